//! Source spans: line and column of an offset, paths of a deserialized field.

/// serde_path_to_error's path without the private field `toml::Spanned` deserializes through.
pub fn clean_path(path: &str) -> String {
    path.replace(".$__serde_spanned_private_value", "")
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}
