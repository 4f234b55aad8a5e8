//! `report.html`: one self-contained file (inline CSS and SVG, no scripts, nothing fetched) that a
//! CI system can keep as an artifact: the summary table, then for each finding its report text,
//! its replay commands and a plot of the resource's count over the repetitions of the lifecycle
//! (`Finding::series`), drawn with plotters' SVG backend.

use std::fmt::Write;

use plotters::prelude::*;

use super::summary::{FindingSummary, Summary, defects_cell};
use crate::seed::format_seed;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}pre{background:#f7f7f7;padding:.8em;overflow-x:auto}code{background:#f3f3f3;padding:0 .2em}\
.pass{color:#176317}.fail{color:#a11}section{border-top:1px solid #ddd;margin-top:2em}";

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub fn render(summary: &Summary) -> String {
    let mut html = String::new();
    let verdict_class = if summary.verdict == "pass" {
        "pass"
    } else {
        "fail"
    };
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>sim sweep: {}</title><style>{STYLE}</style></head><body>\n",
        escape(&summary.verdict)
    );
    let _ = write!(
        html,
        "<h1>sim sweep: <span class=\"{verdict_class}\">{}</span></h1>\n<p>{} runs over {} seeds ({}..{}), {} failed; {} finding(s). {} runs rechecked for determinism, {} mismatches. Wall time {:.1} s ({:.1} runs/s). Trace hash <code>{}</code>.</p>\n",
        escape(&summary.verdict),
        summary.runs,
        summary.seeds_run,
        summary.seeds.start,
        summary.seeds.end,
        summary.runs_failed,
        summary.findings.len(),
        summary.determinism.rechecked,
        summary.determinism.mismatches,
        summary.wall_seconds,
        summary.runs_per_second,
        escape(&summary.trace_hash)
    );
    if !summary.incomplete.is_empty() {
        html.push_str(
            "<p class=\"fail\">Incomplete: this merge is not the whole plan, so it does not pass.</p>\n<ul>\n",
        );
        for missing in &summary.incomplete {
            let _ = writeln!(html, "<li>{}</li>", escape(missing));
        }
        html.push_str("</ul>\n");
    }
    internal_errors_list(&mut html, summary);
    findings_table(&mut html, summary);
    scenarios_table(&mut html, summary);
    for (index, finding) in summary.findings.iter().enumerate() {
        finding_section(&mut html, index, finding);
    }
    html.push_str("</body></html>\n");
    html
}

/// The pairs sim could not run (and the findings it could not minimise), before the findings:
/// their results are unknown, and each says whose code panicked or which repro was not written.
fn internal_errors_list(html: &mut String, summary: &Summary) {
    if summary.internal_errors.is_empty() {
        return;
    }
    html.push_str(
        "<h2>Internal errors</h2>\n<p class=\"fail\">sim could not run these pairs, or minimise their findings: a panic of sim&#39;s own code or of the subject&#39;s, or a repro that could not be written, as each says.</p>\n<ul>\n",
    );
    for error in &summary.internal_errors {
        let _ = writeln!(
            html,
            "<li><code>{}</code> seed <code>{}</code>: <pre>{}</pre>replay: <code>{}</code></li>",
            escape(&error.scenario),
            escape(&format_seed(error.seed)),
            escape(&error.message),
            escape(&error.replay)
        );
    }
    html.push_str("</ul>\n");
}

fn findings_table(html: &mut String, summary: &Summary) {
    html.push_str("<h2>Findings</h2>\n");
    if summary.findings.is_empty() {
        html.push_str("<p class=\"pass\">No findings.</p>\n");
        return;
    }
    html.push_str("<table><tr><th>#</th><th>signature</th><th>subject</th><th>defects</th><th>runs</th><th>first seed</th><th>seeds to first</th><th>ops (minimised)</th><th>repro</th></tr>\n");
    for (index, f) in summary.findings.iter().enumerate() {
        let ops = match (f.ops_before, f.ops_after) {
            (Some(before), Some(after)) => format!("{before} → {after}"),
            _ => "-".into(),
        };
        let _ = writeln!(
            html,
            "<tr><td><a href=\"#finding-{index}\">{}</a></td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{ops}</td><td><code>{}</code></td></tr>",
            index + 1,
            escape(&f.signature),
            escape(&f.subject),
            escape(&defects_cell(&f.defects)),
            f.count,
            escape(&format_seed(f.first_seed)),
            f.seeds_to_first,
            escape(f.repro.as_deref().unwrap_or("-"))
        );
    }
    html.push_str("</table>\n");
}

fn scenarios_table(html: &mut String, summary: &Summary) {
    html.push_str("<h2>Scenarios</h2>\n<table><tr><th>scenario</th><th>subject</th><th>defects</th><th>runs</th><th>failed</th><th>signatures</th></tr>\n");
    for s in &summary.scenarios {
        let _ = writeln!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            escape(&s.scenario),
            escape(&s.subject),
            escape(&defects_cell(&s.defects)),
            s.runs,
            // Red for a pair sim could not run too, as the text table's row says it: a row
            // whose runs failed none is not clean while some never ran.
            if s.clean() { "pass" } else { "fail" },
            s.runs_failed,
            s.found()
                .iter()
                .map(|found| format!("<code>{}</code>", escape(found)))
                .collect::<Vec<_>>()
                .join("<br>")
        );
    }
    html.push_str("</table>\n");
}

fn finding_section(html: &mut String, index: usize, f: &FindingSummary) {
    let _ = writeln!(
        html,
        "<section id=\"finding-{index}\"><h2>{}. <code>{}</code></h2>\n<p>{} — seen in {} run(s); first at seed <code>{}</code> of <code>{}</code>.</p>",
        index + 1,
        escape(&f.signature),
        escape(&f.headline),
        f.count,
        escape(&format_seed(f.first_seed)),
        escape(&f.first_scenario)
    );
    if let Some(report) = &f.report {
        let _ = writeln!(html, "<pre>{}</pre>", escape(report));
    }
    if let Some(replay) = &f.replay {
        let _ = writeln!(
            html,
            "<p>Replay the minimised repro: <code>{}</code></p>",
            escape(replay)
        );
    }
    if let Some(original) = &f.original_replay {
        let _ = writeln!(
            html,
            "<p>Replay the run as swept: <code>{}</code></p>",
            escape(original)
        );
    }
    if f.series.len() >= 2 {
        html.push_str(&series_svg(&f.resource, &f.series));
        html.push('\n');
    } else {
        html.push_str("<p><em>No series: the finding is not about a count over repetitions (or the lifecycle ran once).</em></p>\n");
    }
    html.push_str("</section>\n");
}

/// A line plot of a resource's count after each repetition, as inline SVG.
pub fn series_svg(resource: &str, series: &[u64]) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 260)).into_drawing_area();
        let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
            root.fill(&WHITE)?;
            let y_max = series.iter().copied().max().unwrap_or(1).max(1);
            let mut chart = ChartBuilder::on(&root)
                .caption(
                    format!("{resource} after each repetition"),
                    ("sans-serif", 16),
                )
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(50)
                .build_cartesian_2d(0u64..(series.len() as u64 - 1).max(1), 0u64..y_max + 1)?;
            chart
                .configure_mesh()
                .x_desc("repetition")
                .y_desc(resource)
                .draw()?;
            chart.draw_series(LineSeries::new(
                series.iter().enumerate().map(|(i, &v)| (i as u64, v)),
                RED.stroke_width(2),
            ))?;
            root.present()?;
            Ok(())
        })();
        if drawn.is_err() {
            // A plot is a convenience; the numbers below it still tell the story.
            drop(root);
            svg.clear();
        }
    }
    let numbers: Vec<String> = series.iter().map(u64::to_string).collect();
    format!(
        "<figure>{svg}<figcaption>{}: {}</figcaption></figure>",
        escape(resource),
        numbers.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_becomes_an_inline_svg_with_its_numbers() {
        let figure = series_svg("heap block", &[1, 2, 3, 4]);
        assert!(figure.contains("<svg"), "{figure}");
        assert!(figure.contains("heap block: 1, 2, 3, 4"));
        assert_eq!(escape("<a & 'b'>"), "&lt;a &amp; &#39;b&#39;&gt;");
    }
}
