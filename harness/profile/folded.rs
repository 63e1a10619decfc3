//! Folded stacks: `root;…;leaf` → weight; they merge and diff, and every SVG is a view of them.

use std::collections::BTreeMap;

/// Folded stacks: `root;…;leaf` → weight (samples, or µs for wall-clock profiles).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Folded(pub BTreeMap<String, u64>);

impl Folded {
    /// Parse `stack count` lines; blank lines and lines without a stack are skipped.
    pub fn parse(text: &str) -> Self {
        let mut f = Self::default();
        for line in text.lines() {
            let Some((stack, count)) = line.trim_end().rsplit_once(' ') else {
                continue;
            };
            let (stack, Ok(count)) = (stack.trim(), count.parse::<u64>()) else {
                continue;
            };
            if !stack.is_empty() {
                f.add(stack, count);
            }
        }
        f
    }

    /// Add `weight` to `stack`. Control characters in frame names (a NUL or a carriage return
    /// that `py-spy --nonblocking` reads from a frame torn while it was being written) become
    /// U+FFFD: they are not allowed in the SVG's XML and would make a browser refuse the file.
    pub fn add(&mut self, stack: &str, weight: u64) {
        if weight > 0 {
            let stack = if stack.contains(char::is_control) {
                stack
                    .chars()
                    .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
                    .collect()
            } else {
                stack.to_string()
            };
            *self.0.entry(stack).or_default() += weight;
        }
    }

    pub fn merge(&mut self, other: &Folded) {
        for (s, w) in &other.0 {
            self.add(s, *w);
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether some frame of some stack contains `needle`.
    pub fn has_frame(&self, needle: &str) -> bool {
        self.0
            .keys()
            .any(|s| s.split(';').any(|f| f.contains(needle)))
    }

    /// Weight of every stack that passes through a frame containing `needle`.
    pub fn inclusive(&self, needle: &str) -> u64 {
        self.0
            .iter()
            .filter(|(s, _)| s.split(';').any(|f| f.contains(needle)))
            .map(|(_, w)| w)
            .sum()
    }

    /// Drop the stacks whose leaf frame is one of `idle_leaves`; returns their weight.
    pub fn remove_idle(&mut self, idle_leaves: &[String]) -> u64 {
        let mut idle = 0;
        self.0.retain(|stack, w| {
            let leaf = stack.rsplit(';').next().unwrap_or(stack);
            let waiting = idle_leaves.iter().any(|l| l == leaf);
            if waiting {
                idle += *w;
            }
            !waiting
        });
        idle
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for (stack, w) in &self.0 {
            s.push_str(stack);
            s.push(' ');
            s.push_str(&w.to_string());
            s.push('\n');
        }
        s
    }
}
