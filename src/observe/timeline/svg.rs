//! The SVG Gantt chart of a [`Timeline`](super::Timeline): one track per
//! thread, one bar per task, on a time axis.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use super::TimelineTask;
use crate::callback::Outcome;
use crate::Error;

/// The SVG Gantt chart of `tasks`, sorted by start: see
/// [`Timeline::to_svg`](super::Timeline::to_svg).
pub(super) fn draw(tasks: Vec<TimelineTask>) -> String {
    if tasks.is_empty() {
        return empty_svg();
    }
    // Bars are at least a few pixels wide: give short tasks room.
    let span = tasks.iter().map(|task| task.end).max().unwrap_or_default();
    Chart::new(tasks, span / 250).svg()
}

/// The tasks of a timeline laid out in rows: each thread's track gets as
/// many lanes as it had tasks running at once, counting each task as
/// lasting at least `shortest`.
pub(super) struct Chart {
    /// Sorted by start.
    pub(super) tasks: Vec<TimelineTask>,
    /// The tracks that have tasks, by number. Their lanes, in this order,
    /// are the chart's rows.
    pub(super) tracks: BTreeMap<usize, Track>,
    /// The row of each task.
    pub(super) row_of: Vec<usize>,
}

/// A thread's track in a chart.
pub(super) struct Track {
    /// The thread's name, numbered where several threads share one.
    pub(super) label: String,
    /// How many tasks it ran at once, at most.
    pub(super) lanes: usize,
}

impl Chart {
    pub(super) fn new(tasks: Vec<TimelineTask>, shortest: Duration) -> Chart {
        // Greedy interval colouring in start order: the fewest lanes.
        let mut lanes: BTreeMap<usize, Vec<Duration>> = BTreeMap::new();
        let mut lane_of = Vec::with_capacity(tasks.len());
        for task in &tasks {
            let ends = lanes.entry(task.thread).or_default();
            let lane = match ends.iter().position(|&end| end <= task.start) {
                Some(lane) => lane,
                None => {
                    ends.push(Duration::ZERO);
                    ends.len() - 1
                }
            };
            ends[lane] = task.end.max(task.start + shortest);
            lane_of.push(lane);
        }
        let mut first_row = HashMap::new();
        let mut rows = 0;
        for (&track, ends) in &lanes {
            first_row.insert(track, rows);
            rows += ends.len();
        }
        let row_of = tasks
            .iter()
            .zip(&lane_of)
            .map(|(task, lane)| first_row[&task.thread] + lane)
            .collect();

        let mut names: BTreeMap<usize, Option<&str>> = BTreeMap::new();
        for task in &tasks {
            names.insert(task.thread, task.thread_name());
        }
        let mut sharing: HashMap<Option<&str>, usize> = HashMap::new();
        for name in names.values() {
            *sharing.entry(*name).or_default() += 1;
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let tracks = names
            .iter()
            .map(|(&track, &name)| {
                let label = match name {
                    None => format!("thread {}", track + 1),
                    Some(name) if sharing[&Some(name)] == 1 => name.to_string(),
                    Some(name) => {
                        let n = seen.entry(name).or_default();
                        *n += 1;
                        format!("{name} #{n}")
                    }
                };
                let lanes = lanes[&track].len();
                (track, Track { label, lanes })
            })
            .collect();
        Chart {
            tasks,
            tracks,
            row_of,
        }
    }

    fn span(&self) -> Duration {
        self.tasks
            .iter()
            .map(|task| task.end)
            .max()
            .unwrap_or_default()
    }

    fn svg(&self) -> String {
        let colours = Colours::new(&self.tasks);
        let frame = self.frame();
        let legend = self.legend(&colours, frame.plot_bottom + 20.0);
        let height = (legend.last().map_or(frame.plot_bottom, |item| item.y) + 28.0).ceil();

        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="{FONT}" font-size="12">"#,
        );
        out.push_str(concat!(
            r##"<defs><pattern id="delayed-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">"##,
            r##"<line x1="0" y1="0" x2="0" y2="6" stroke="#24292f" stroke-opacity="0.45" stroke-width="2"/></pattern></defs>"##,
            "\n<style>.task:hover .bar { stroke: #24292f; stroke-width: 1.5; }</style>\n",
        ));
        let _ = writeln!(
            out,
            r##"<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>"##
        );
        self.draw_header(&mut out);
        draw_tracks(&mut out, &frame);
        draw_axis(&mut out, &frame);
        self.draw_bars(&mut out, &frame, &colours);
        draw_legend(&mut out, &legend);
        out.push_str("</svg>\n");
        out
    }

    /// Lays out the label column, the plot, and each track and lane.
    fn frame(&self) -> Frame {
        let label_width = self
            .tracks
            .values()
            .map(|track| text_width(&track.label, 12.0))
            .fold(40.0, f64::max)
            .min(MAX_LABEL);
        let left = (MARGIN + label_width + 12.0).round();
        let right = WIDTH - 28.0;
        let rows: usize = self.tracks.values().map(|track| track.lanes).sum();
        // Many lanes get thinner, down to a few pixels.
        let lane_height = (880.0 / rows as f64).clamp(6.0, 22.0);
        let mut bands = Vec::with_capacity(self.tracks.len());
        let mut row_top = Vec::with_capacity(rows);
        let mut y = PLOT_TOP;
        for track in self.tracks.values() {
            let height = track.lanes as f64 * lane_height + 2.0 * TRACK_PAD;
            bands.push((track.label.clone(), y, height));
            row_top.extend((0..track.lanes).map(|lane| y + TRACK_PAD + lane as f64 * lane_height));
            y += height;
        }
        Frame {
            left,
            right,
            lane_height,
            row_top,
            bands,
            plot_bottom: y,
            axis: Axis::new(self.span(), right - left),
        }
    }

    /// Places the legend's entries, wrapping them at the chart's width:
    /// each function's colour, then the failed and cancelled styles if any
    /// task has them.
    fn legend(&self, colours: &Colours, top: f64) -> Vec<LegendItem> {
        let mut entries: Vec<(Swatch, String)> = colours
            .names
            .iter()
            .map(|name| (Swatch::Fill(colours.of(name).0), name.to_string()))
            .collect();
        let has = |word: &str| self.tasks.iter().any(|t| outcome_word(&t.outcome) == word);
        if has("failed") {
            entries.push((Swatch::Failed, "failed".to_string()));
        }
        if has("cancelled") {
            entries.push((Swatch::Cancelled, "cancelled".to_string()));
        }
        if has("cached") {
            entries.push((Swatch::Cached, "cached".to_string()));
        }
        let start = MARGIN + 4.0;
        let (mut x, mut y) = (start, top);
        let mut items = Vec::with_capacity(entries.len());
        for (swatch, text) in entries {
            let text = truncate(&text, 300.0, 12.0);
            let width = 18.0 + text_width(&text, 12.0) + 20.0;
            if x + width > WIDTH - MARGIN && x > start {
                x = start;
                y += 20.0;
            }
            items.push(LegendItem { x, y, swatch, text });
            x += width;
        }
        items
    }

    /// The title, and a summary at the right: tasks, threads, span.
    fn draw_header(&self, out: &mut String) {
        let (tasks, tracks) = (self.tasks.len(), self.tracks.len());
        let summary = format!(
            "{tasks} {} · {tracks} {} · {}",
            plural(tasks, "task"),
            plural(tracks, "thread"),
            format_duration(self.span()),
        );
        let _ = writeln!(
            out,
            r##"<text x="{MARGIN}" y="28" font-size="15" font-weight="bold" fill="#1f2328">Timeline</text>"##
        );
        let _ = writeln!(
            out,
            r##"<text x="{}" y="28" text-anchor="end" fill="#57606a">{}</text>"##,
            WIDTH - MARGIN,
            xml(&summary),
        );
    }

    /// One group per task: its tooltip, its bar, and its key or function
    /// name inside the bar when it fits.
    fn draw_bars(&self, out: &mut String, frame: &Frame, colours: &Colours) {
        let bar_pad = (frame.lane_height * 0.14).max(1.0);
        let bar_height = frame.lane_height - 2.0 * bar_pad;
        let radius = num((bar_height / 5.0).min(3.0));
        out.push_str("<g class=\"tasks\">\n");
        for (task, &row) in self.tasks.iter().zip(&self.row_of) {
            let (fill, mut ink) = colours.of(task.name);
            let left = frame.x(task.start);
            let width = (frame.x(task.end) - left).max(MIN_BAR);
            let top = frame.row_top[row] + bar_pad;
            let (x, y, w, h) = (num(left), num(top), num(width), num(bar_height));
            let _ = write!(
                out,
                r#"<g class="task {}"><title>{}</title>"#,
                outcome_word(&task.outcome),
                xml(&self.tooltip(task))
            );
            let _ = write!(
                out,
                r#"<rect class="bar" x="{x}" y="{y}" width="{w}" height="{h}" rx="{radius}" fill="{fill}""#
            );
            match task.outcome {
                Outcome::Done => out.push_str("/>"),
                Outcome::Cached => {
                    out.push_str(
                        r##" stroke="#6a3d9a" stroke-width="2" stroke-dasharray="2 2"/>"##,
                    );
                }
                Outcome::Failed(_) => {
                    out.push_str(r##" stroke="#cf222e" stroke-width="2"/>"##);
                }
                Outcome::Cancelled => {
                    out.push_str(
                        r##" fill-opacity="0.45" stroke="#57606a" stroke-width="1" stroke-dasharray="3 2"/>"##,
                    );
                    let _ = write!(
                        out,
                        r#"<rect class="hatch" x="{x}" y="{y}" width="{w}" height="{h}" rx="{radius}" fill="url(#delayed-hatch)"/>"#
                    );
                    ink = "#24292f";
                }
            }
            let text = [task.key.as_str(), task.name]
                .into_iter()
                .find(|text| text_width(text, 11.0) + 8.0 <= width);
            if let (Some(text), true) = (text, bar_height >= 12.0) {
                let _ = write!(
                    out,
                    r#"<text class="label" x="{}" y="{}" font-size="11" fill="{ink}">{}</text>"#,
                    num(left + 4.0),
                    num(top + bar_height / 2.0 + 4.0),
                    xml(text),
                );
            }
            out.push_str("</g>\n");
        }
        out.push_str("</g>\n");
    }

    /// A bar's tooltip: key, function and thread, times, outcome.
    fn tooltip(&self, task: &TimelineTask) -> String {
        let outcome = match &task.outcome {
            Outcome::Failed(err) => format!("failed: {}", error_message(err)),
            other => outcome_word(other).to_string(),
        };
        format!(
            "{}\n{} on {}\n{} → {} ({})\n{}",
            task.key,
            task.name,
            self.tracks[&task.thread].label,
            format_duration(task.start),
            format_duration(task.end),
            format_duration(task.end - task.start),
            outcome,
        )
    }
}

/// Where the parts of an SVG chart go, in pixels.
struct Frame {
    /// The plot's left and right edges.
    left: f64,
    right: f64,
    lane_height: f64,
    /// The top of each row.
    row_top: Vec<f64>,
    /// Each track's label, top and height.
    bands: Vec<(String, f64, f64)>,
    /// The bottom of the last track.
    plot_bottom: f64,
    axis: Axis,
}

impl Frame {
    /// Where time `t` falls on the plot.
    fn x(&self, t: Duration) -> f64 {
        self.left + t.as_nanos() as f64 / self.axis.domain as f64 * (self.right - self.left)
    }
}

/// Bar colours by function, in order of first appearance.
struct Colours {
    names: Vec<&'static str>,
}

impl Colours {
    fn new(tasks: &[TimelineTask]) -> Colours {
        let mut names = Vec::new();
        for task in tasks {
            if !names.contains(&task.name) {
                names.push(task.name);
            }
        }
        Colours { names }
    }

    /// The fill of a function's bars, and the text colour readable on it.
    fn of(&self, name: &str) -> (&'static str, &'static str) {
        let i = self.names.iter().position(|n| *n == name).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    }
}

/// An entry of the legend, placed.
struct LegendItem {
    x: f64,
    /// The text's baseline.
    y: f64,
    swatch: Swatch,
    text: String,
}

/// How a legend entry's swatch is drawn.
enum Swatch {
    Fill(&'static str),
    Failed,
    Cancelled,
    Cached,
}

/// Alternating bands, one per track, with the thread's label at the left.
fn draw_tracks(out: &mut String, frame: &Frame) {
    out.push_str("<g class=\"tracks\">\n");
    for (i, (label, top, height)) in frame.bands.iter().enumerate() {
        let fill = if i % 2 == 0 { "#f6f8fa" } else { "#ffffff" };
        let _ = writeln!(
            out,
            r#"<rect class="track" x="{MARGIN}" y="{}" width="{}" height="{}" fill="{fill}"/>"#,
            num(*top),
            num(frame.right - MARGIN),
            num(*height),
        );
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" text-anchor="end" fill="#24292f">{}</text>"##,
            num(frame.left - 10.0),
            num(top + height / 2.0 + 4.0),
            xml(&truncate(label, MAX_LABEL, 12.0)),
        );
    }
    out.push_str("</g>\n");
}

/// The time axis above the tracks: a grid line and a label per tick.
fn draw_axis(out: &mut String, frame: &Frame) {
    let axis = &frame.axis;
    out.push_str("<g class=\"axis\">\n");
    for i in 0..=axis.ticks {
        let t = axis.step * i;
        let x = num(frame.x(Duration::from_nanos(t as u64)));
        let _ = writeln!(
            out,
            r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#d0d7de" stroke-width="1"/>"##,
            num(PLOT_TOP - 5.0),
            num(frame.plot_bottom),
        );
        let _ = writeln!(
            out,
            r##"<text x="{x}" y="{}" text-anchor="middle" fill="#57606a">{}</text>"##,
            num(PLOT_TOP - 10.0),
            xml(&axis.label(t)),
        );
    }
    let _ = writeln!(
        out,
        r##"<line x1="{}" y1="{PLOT_TOP}" x2="{}" y2="{PLOT_TOP}" stroke="#8c959f" stroke-width="1"/>"##,
        num(frame.left),
        num(frame.right),
    );
    out.push_str("</g>\n");
}

/// The legend's swatches and names.
fn draw_legend(out: &mut String, items: &[LegendItem]) {
    out.push_str("<g class=\"legend\">\n");
    for item in items {
        let (x, y) = (num(item.x), num(item.y - 10.0));
        let square =
            format!(r#"<rect class="swatch" x="{x}" y="{y}" width="12" height="12" rx="2""#);
        match item.swatch {
            Swatch::Fill(fill) => {
                let _ = write!(out, r#"{square} fill="{fill}"/>"#);
            }
            Swatch::Failed => {
                let _ = write!(
                    out,
                    r##"{square} fill="#ffffff" stroke="#cf222e" stroke-width="2"/>"##
                );
            }
            Swatch::Cached => {
                let _ = write!(
                    out,
                    r##"{square} fill="#ffffff" stroke="#6a3d9a" stroke-width="2" stroke-dasharray="2 2"/>"##
                );
            }
            Swatch::Cancelled => {
                let _ = write!(
                    out,
                    r##"{square} fill="#8c959f" fill-opacity="0.45" stroke="#57606a" stroke-dasharray="3 2"/>"##
                );
                let _ = write!(
                    out,
                    r#"<rect x="{x}" y="{y}" width="12" height="12" rx="2" fill="url(#delayed-hatch)"/>"#
                );
            }
        }
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" fill="#24292f">{}</text>"##,
            num(item.x + 18.0),
            num(item.y),
            xml(&item.text),
        );
    }
    out.push_str("</g>\n");
}

/// Bar colours and the text colour readable on each: Tableau's palette,
/// less its red, which marks failures.
const PALETTE: [(&str, &str); 10] = [
    ("#4e79a7", "#ffffff"),
    ("#f28e2b", "#1f2328"),
    ("#59a14f", "#ffffff"),
    ("#b07aa1", "#ffffff"),
    ("#76b7b2", "#1f2328"),
    ("#edc948", "#1f2328"),
    ("#9c755f", "#ffffff"),
    ("#ff9da7", "#1f2328"),
    ("#a0cbe8", "#1f2328"),
    ("#b6992d", "#1f2328"),
];

/// The chart's width, in pixels.
const WIDTH: f64 = 1200.0;

/// The space around the chart, in pixels.
const MARGIN: f64 = 16.0;

/// The time axis's line, in pixels from the top: the title and the tick
/// labels are above it.
const PLOT_TOP: f64 = 66.0;

/// The chart's fonts: the system's sans-serif.
const FONT: &str = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif";

/// The widest a thread label may be, in pixels.
const MAX_LABEL: f64 = 260.0;

/// The space above and below the lanes of a track, in pixels.
const TRACK_PAD: f64 = 4.0;

/// The narrowest bar drawn, in pixels, so that instant tasks show.
const MIN_BAR: f64 = 3.0;

/// A time axis with 1-2-5 steps, from 0 to a whole number of steps.
struct Axis {
    /// Nanoseconds between ticks.
    step: u128,
    /// How many steps it spans.
    ticks: u128,
    /// The axis's end, in nanoseconds.
    domain: u128,
    /// The labels' unit: its size in nanoseconds and its symbol.
    unit: (u128, &'static str),
    /// Decimals that show every tick exactly.
    decimals: usize,
}

impl Axis {
    fn new(span: Duration, plot_width: f64) -> Axis {
        let span = span.as_nanos().max(1_000);
        let target = (plot_width / 100.0).floor().max(2.0) as u128;
        let raw = span.div_ceil(target);
        let mut power = 1_u128;
        let step = 'search: loop {
            for m in [1, 2, 5] {
                if m * power >= raw {
                    break 'search m * power;
                }
            }
            power *= 10;
        };
        let ticks = span.div_ceil(step);
        let domain = ticks * step;
        let unit = if domain < 1_000_000 {
            (1_000, "µs")
        } else if domain < 1_000_000_000 {
            (1_000_000, "ms")
        } else {
            (1_000_000_000, "s")
        };
        let mut decimals = 0;
        while (step * 10_u128.pow(decimals as u32)) % unit.0 != 0 {
            decimals += 1;
        }
        Axis {
            step,
            ticks,
            domain,
            unit,
            decimals,
        }
    }

    fn label(&self, t: u128) -> String {
        let value = t as f64 / self.unit.0 as f64;
        format!("{value:.*} {}", self.decimals, self.unit.1)
    }
}

/// The SVG of an empty timeline.
fn empty_svg() -> String {
    format!(
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="320" height="64" viewBox="0 0 320 64" font-family="{}" font-size="12">"#,
            "\n",
            r##"<rect width="320" height="64" fill="#ffffff"/>"##,
            "\n",
            r##"<text x="160" y="36" text-anchor="middle" fill="#57606a">no tasks</text>"##,
            "\n</svg>\n"
        ),
        FONT
    )
}

/// The word for an outcome in JSON args and SVG classes.
pub(super) fn outcome_word(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Done => "done",
        Outcome::Failed(_) => "failed",
        Outcome::Cancelled => "cancelled",
        Outcome::Cached => "cached",
    }
}

/// An error and its causes, joined with `": "`.
pub(super) fn error_message(err: &Error) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let _ = write!(message, ": {cause}");
        source = cause.source();
    }
    message
}

/// `word` or its plural, for `n` things.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

/// A duration for people: `20 ms`, `1.5 s`, `250 µs`, `0 ms`.
pub(crate) fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    let (unit, symbol) = if nanos == 0 {
        return "0 ms".to_string();
    } else if nanos < 1_000 {
        (1, "ns")
    } else if nanos < 1_000_000 {
        (1_000, "µs")
    } else if nanos < 1_000_000_000 {
        (1_000_000, "ms")
    } else {
        (1_000_000_000, "s")
    };
    let value = format!("{:.3}", nanos as f64 / unit as f64);
    let value = value.trim_end_matches('0').trim_end_matches('.');
    format!("{value} {symbol}")
}

/// A coordinate with at most one decimal.
fn num(x: f64) -> String {
    let s = format!("{x:.1}");
    match s.strip_suffix(".0") {
        Some(whole) => whole.to_string(),
        None => s,
    }
}

/// A guess at the width of `text` in a sans-serif font of `size` pixels.
fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.6
}

/// `text`, cut with an ellipsis to fit `width` pixels.
fn truncate(text: &str, width: f64, size: f64) -> String {
    if text_width(text, size) <= width {
        return text.to_string();
    }
    let keep = ((width / (size * 0.6)) as usize).saturating_sub(1);
    let mut cut: String = text.chars().take(keep).collect();
    cut.push('…');
    cut
}

/// `s` escaped for XML text and attribute values. Control characters that
/// XML cannot hold become U+FFFD.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if u32::from(c) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                out.push('\u{fffd}');
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_is_escaped() {
        assert_eq!(xml("a & b < c > d"), "a &amp; b &lt; c &gt; d");
        assert_eq!(
            xml(r#"say "hi" 'there'"#),
            "say &quot;hi&quot; &#39;there&#39;"
        );
        assert_eq!(
            xml("tab\tnl\n bell\u{7} nul\u{0}"),
            "tab\tnl\n bell\u{fffd} nul\u{fffd}"
        );
        assert_eq!(xml("µs → ✓"), "µs → ✓");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(Duration::ZERO), "0 ms");
        assert_eq!(format_duration(Duration::from_nanos(300)), "300 ns");
        assert_eq!(format_duration(Duration::from_micros(250)), "250 µs");
        assert_eq!(format_duration(Duration::from_millis(20)), "20 ms");
        assert_eq!(format_duration(Duration::from_micros(1_500)), "1.5 ms");
        assert_eq!(format_duration(Duration::from_millis(2_250)), "2.25 s");
    }

    #[test]
    fn axis_steps_are_nice() {
        let ms = Duration::from_millis;
        let axis = Axis::new(ms(25), 1000.0);
        assert_eq!((axis.step, axis.domain), (5_000_000, 25_000_000));
        assert_eq!(axis.label(axis.step * 2), "10 ms");
        let axis = Axis::new(ms(3), 1000.0);
        assert_eq!(axis.step, 500_000);
        assert_eq!(axis.label(axis.step), "0.5 ms");
        let axis = Axis::new(Duration::from_micros(730), 1000.0);
        assert_eq!((axis.step, axis.domain), (100_000, 800_000));
        assert_eq!(axis.label(axis.step * 3), "300 µs");
        let axis = Axis::new(Duration::from_secs(42), 1000.0);
        assert_eq!(axis.step, 5_000_000_000);
        assert_eq!(axis.label(axis.domain), "45 s");
        // An empty span still gets an axis.
        let axis = Axis::new(Duration::ZERO, 1000.0);
        assert_eq!(axis.domain, 1_000);
        assert_eq!(axis.label(axis.step), "0.1 µs");
    }

    #[test]
    fn long_labels_are_cut() {
        assert_eq!(truncate("short", 100.0, 12.0), "short");
        let cut = truncate(&"x".repeat(100), 72.0, 12.0);
        assert_eq!(cut, format!("{}…", "x".repeat(9)));
    }
}
