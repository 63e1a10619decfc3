//! One scenario over both sync protocols, side by side: protocols.md and protocols.html.

use crate::analysis::protocols::{ProtocolSides, workload_metric};
use crate::metrics::catalogue;
use crate::util::fmt::esc;

fn cell(metric: &str, v: Option<f64>) -> String {
    v.map(|v| catalogue::format(metric, v))
        .unwrap_or_else(|| "—".into())
}

fn ratio(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.2}×")).unwrap_or_else(|| "—".into())
}

/// Markdown: the runs, then one table (a column per protocol, the ratio to the first).
pub fn markdown(s: &ProtocolSides) -> String {
    let mut md = format!(
        "## hsbench · {} over {}\n\n",
        s.scenario,
        s.runs
            .iter()
            .map(|r| r.protocol.as_str())
            .collect::<Vec<_>>()
            .join(" and ")
    );
    md.push_str("One dataset and one set of clients, each sync workload over each protocol. The workloads' figures come first; the boots' and the dataset's follow (the protocol does not change them: their differences are run-to-run noise).\n\n");
    for r in &s.runs {
        md.push_str(&format!(
            "- **{}**: run `{}` · {} · `{}`\n",
            r.protocol, r.run_id, r.status, r.run_dir
        ));
    }
    let first = &s.runs[0].protocol;
    md.push_str("\n| metric |");
    for r in &s.runs {
        md.push_str(&format!(" {} |", r.protocol));
    }
    for r in &s.runs[1..] {
        md.push_str(&format!(" {} / {first} |", r.protocol));
    }
    md.push_str("\n|---|");
    md.push_str(&"---:|".repeat(2 * s.runs.len() - 1));
    md.push('\n');
    for row in &s.rows {
        md.push_str(&format!("| `{}` |", row.metric));
        for v in &row.values {
            md.push_str(&format!(" {} |", cell(&row.metric, *v)));
        }
        for r in &row.ratios[1..] {
            md.push_str(&format!(" {} |", ratio(*r)));
        }
        md.push('\n');
    }
    md
}

/// A self-contained page: the same table, each run linked to its own report.html.
pub fn html(s: &ProtocolSides) -> String {
    let title = format!("hsbench · {} over both sync protocols", s.scenario);
    let mut h = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}\
         table{{border-collapse:collapse}}td,th{{padding:.3em .8em;border-bottom:1px solid #ddd}}\
         td.n{{text-align:right;font-variant-numeric:tabular-nums}}th{{text-align:left}}\
         .better{{color:#176b2c}}.worse{{color:#a11}}</style></head><body><h1>{}</h1>\
         <p>One dataset and one set of clients, each sync workload over each protocol.</p><ul>",
        esc(&title),
        esc(&title)
    );
    for r in &s.runs {
        h.push_str(&format!(
            "<li><b>{}</b>: run <code>{}</code> · {} · <a href=\"{}/report.html\">its report</a></li>",
            esc(&r.protocol),
            esc(&r.run_id),
            esc(&r.status),
            esc(&r.run_dir)
        ));
    }
    h.push_str("</ul><table><tr><th>metric</th>");
    for r in &s.runs {
        h.push_str(&format!("<th>{}</th>", esc(&r.protocol)));
    }
    for r in &s.runs[1..] {
        h.push_str(&format!(
            "<th>{} / {}</th>",
            esc(&r.protocol),
            esc(&s.runs[0].protocol)
        ));
    }
    h.push_str("</tr>");
    let mut boots_said = false;
    for row in &s.rows {
        let workload = workload_metric(&row.metric);
        if !workload && !boots_said {
            boots_said = true;
            h.push_str(&format!(
                "<tr><th colspan=\"{}\">Boots and dataset (the protocol does not change them: their differences are run-to-run noise)</th></tr>",
                2 * s.runs.len()
            ));
        }
        h.push_str(&format!("<tr><td><code>{}</code></td>", esc(&row.metric)));
        for v in &row.values {
            h.push_str(&format!(
                "<td class=\"n\">{}</td>",
                esc(&cell(&row.metric, *v))
            ));
        }
        for r in &row.ratios[1..] {
            // Every metric here is a cost (time, bytes, CPU, errors), as `compare` treats them:
            // below 1 is better. Only the workloads' figures depend on the protocol.
            let class = match r {
                Some(r) if workload && *r < 0.95 => " better",
                Some(r) if workload && *r > 1.05 => " worse",
                _ => "",
            };
            h.push_str(&format!("<td class=\"n{class}\">{}</td>", esc(&ratio(*r))));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table></body></html>\n");
    h
}
