//! The Chrome trace-event JSON of a [`Timeline`](super::Timeline), for
//! Perfetto or `chrome://tracing`.

use std::fmt::Write as _;
use std::time::Duration;

use super::svg::{error_message, outcome_word, Chart};
use super::TimelineTask;
use crate::callback::Outcome;

/// The trace-event JSON of `tasks`, sorted by start: see
/// [`Timeline::to_chrome_json`](super::Timeline::to_chrome_json).
pub(super) fn trace(tasks: Vec<TimelineTask>) -> String {
    let chart = Chart::new(tasks, Duration::ZERO);
    let mut events = vec![format!(
        r#"{{"name":"process_name","ph":"M","pid":1,"tid":0,"args":{{"name":{}}}}}"#,
        json_string("delayed")
    )];
    let rows = chart
        .tracks
        .values()
        .flat_map(|track| (0..track.lanes).map(move |lane| (track, lane)));
    for (i, (track, lane)) in rows.enumerate() {
        let tid = i + 1;
        let name = match lane {
            0 => track.label.clone(),
            _ => format!("{} (lane {})", track.label, lane + 1),
        };
        events.push(format!(
            r#"{{"name":"thread_name","ph":"M","pid":1,"tid":{tid},"args":{{"name":{}}}}}"#,
            json_string(&name)
        ));
        events.push(format!(
            r#"{{"name":"thread_sort_index","ph":"M","pid":1,"tid":{tid},"args":{{"sort_index":{tid}}}}}"#
        ));
    }
    for (task, &row) in chart.tasks.iter().zip(&chart.row_of) {
        let mut args = format!(
            r#""key":{},"outcome":{}"#,
            json_string(&task.key),
            json_string(outcome_word(&task.outcome))
        );
        if let Outcome::Failed(err) = &task.outcome {
            let _ = write!(args, r#","error":{}"#, json_string(&error_message(err)));
        }
        events.push(format!(
            r#"{{"name":{},"cat":"task","ph":"X","ts":{},"dur":{},"pid":1,"tid":{},"args":{{{args}}}}}"#,
            json_string(task.name),
            micros(task.start),
            micros(task.end - task.start),
            row + 1,
        ));
    }
    format!(
        "{{\"traceEvents\":[\n{}\n],\n\"displayTimeUnit\":\"ms\"}}\n",
        events.join(",\n")
    )
}

/// A duration in microseconds for a trace: whole when exact, else with
/// up to three decimals.
fn micros(d: Duration) -> String {
    let nanos = d.as_nanos();
    let (whole, frac) = (nanos / 1_000, nanos % 1_000);
    if frac == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{frac:03}")
            .trim_end_matches('0')
            .to_string()
    }
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("plain"), r#""plain""#);
        assert_eq!(
            json_string("a \"quoted\" \\ key\nline\r\ttab"),
            r#""a \"quoted\" \\ key\nline\r\ttab""#
        );
        assert_eq!(
            json_string("\u{0}\u{1}\u{1f}\u{7f}"),
            r#""\u0000\u0001\u001f\u007f""#
        );
        assert_eq!(json_string("ünï ✓ 😀"), "\"ünï ✓ 😀\"");
        assert_eq!(json_string("ends with \\"), r#""ends with \\""#);
    }

    #[test]
    fn micros_are_exact() {
        assert_eq!(micros(Duration::ZERO), "0");
        assert_eq!(micros(Duration::from_millis(20)), "20000");
        assert_eq!(micros(Duration::from_nanos(1_500)), "1.5");
        assert_eq!(micros(Duration::from_nanos(1_234)), "1.234");
        assert_eq!(micros(Duration::from_nanos(7)), "0.007");
    }
}
