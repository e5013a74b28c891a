//! A small SVG writer for the scaling figure: line charts with points, logarithmic or linear axes,
//! a legend, several charts side by side in one image. No dependency, plain SVG 1.1 text.

use std::fmt::Write as _;

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// A CSS colour, e.g. `#1f77b4`.
    pub color: String,
    /// Dashed (e.g. for a second measure of the same cache).
    pub dashed: bool,
    pub points: Vec<(f64, f64)>,
}

/// One chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
}

const W: f64 = 420.0;
const H: f64 = 320.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 96.0;

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A number as a tick label: `0.5`, `12`, `1.5k`, `2M`.
pub fn tick_label(v: f64) -> String {
    let a = v.abs();
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    if a >= 1e6 {
        format!("{}M", trim(format!("{:.1}", v / 1e6)))
    } else if a >= 1e3 {
        format!("{}k", trim(format!("{:.1}", v / 1e3)))
    } else if a >= 1.0 || a == 0.0 {
        trim(format!("{v:.1}"))
    } else {
        trim(format!("{v:.3}"))
    }
}

/// An axis: its range, whether logarithmic, and where its ticks go.
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
}

impl Axis {
    fn of(values: impl Iterator<Item = f64>, log: bool) -> Axis {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() {
            (lo, hi) = (1.0, 10.0);
        }
        if log {
            let (l, h) = (lo.log10().floor(), hi.log10().ceil());
            let h = if h <= l { l + 1.0 } else { h };
            Axis {
                lo: 10f64.powf(l),
                hi: 10f64.powf(h),
                log,
            }
        } else {
            let lo = lo.min(0.0);
            let hi = if hi <= lo { lo + 1.0 } else { hi * 1.08 };
            Axis { lo, hi, log }
        }
    }

    /// Where `v` falls, from 0 (low end) to 1 (high end).
    fn frac(&self, v: f64) -> f64 {
        if self.log {
            (v.max(f64::MIN_POSITIVE).log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    fn ticks(&self) -> Vec<f64> {
        if self.log {
            let decades = (self.hi.log10() - self.lo.log10()).round() as i32;
            let steps: &[f64] = if decades <= 2 { &[1.0, 2.0, 5.0] } else { &[1.0] };
            let mut out = Vec::new();
            let mut p = self.lo;
            while p <= self.hi * 1.0001 {
                for s in steps {
                    let v = p * s;
                    if v <= self.hi * 1.0001 {
                        out.push(v);
                    }
                }
                p *= 10.0;
            }
            out
        } else {
            let span = self.hi - self.lo;
            let raw = span / 5.0;
            let mag = 10f64.powf(raw.log10().floor());
            let step = [1.0, 2.0, 5.0, 10.0]
                .iter()
                .map(|m| m * mag)
                .find(|s| span / s <= 6.0)
                .unwrap_or(mag * 10.0);
            let mut out = Vec::new();
            let mut v = (self.lo / step).ceil() * step;
            while v <= self.hi {
                out.push(v);
                v += step;
            }
            out
        }
    }
}

impl Chart {
    /// The chart's SVG elements, drawn in a `W`×`H` box at (`x`, `y`).
    fn render(&self, out: &mut String, x: f64, y: f64) {
        let xa = Axis::of(
            self.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)),
            self.log_x,
        );
        let ya = Axis::of(
            self.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
            self.log_y,
        );
        let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
        let px = |v: f64| x + LEFT + xa.frac(v) * pw;
        let py = |v: f64| y + TOP + (1.0 - ya.frac(v)) * ph;
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="14" font-weight="bold" text-anchor="middle">{}</text>"#,
            x + LEFT + pw / 2.0,
            y + 20.0,
            esc(&self.title)
        );
        let _ = writeln!(
            out,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{pw:.1}\" height=\"{ph:.1}\" fill=\"none\" stroke=\"#888\"/>",
            x + LEFT,
            y + TOP
        );
        for t in xa.ticks() {
            let tx = px(t);
            let _ = writeln!(
                out,
                "<line x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/><text x=\"{tx:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
                y + TOP,
                y + TOP + ph,
                y + TOP + ph + 14.0,
                tick_label(t)
            );
        }
        for t in ya.ticks() {
            let ty = py(t);
            let _ = writeln!(
                out,
                "<line x1=\"{:.1}\" y1=\"{ty:.1}\" x2=\"{:.1}\" y2=\"{ty:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
                x + LEFT,
                x + LEFT + pw,
                x + LEFT - 4.0,
                ty + 4.0,
                tick_label(t)
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"#,
            x + LEFT + pw / 2.0,
            y + TOP + ph + 32.0,
            esc(&self.x_label)
        );
        let (lx, ly) = (x + 14.0, y + TOP + ph / 2.0);
        let _ = writeln!(
            out,
            r#"<text x="{lx:.1}" y="{ly:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 {lx:.1} {ly:.1})">{}</text>"#,
            esc(&self.y_label)
        );
        for s in &self.series {
            let points: Vec<String> = s
                .points
                .iter()
                .filter(|(a, b)| (!self.log_x || *a > 0.0) && (!self.log_y || *b > 0.0))
                .map(|&(a, b)| format!("{:.1},{:.1}", px(a), py(b)))
                .collect();
            let dash = if s.dashed { r#" stroke-dasharray="6 4""# } else { "" };
            let _ = writeln!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
                points.join(" "),
                s.color
            );
            for p in &points {
                if let Some((a, b)) = p.split_once(',') {
                    let _ = writeln!(out, r#"<circle cx="{a}" cy="{b}" r="3" fill="{}"/>"#, s.color);
                }
            }
        }
        for (i, s) in self.series.iter().enumerate() {
            let (row, col) = (i / 2, i % 2);
            let lx = x + LEFT + col as f64 * (pw / 2.0);
            let ly = y + TOP + ph + 50.0 + row as f64 * 16.0;
            let dash = if s.dashed { r#" stroke-dasharray="6 4""# } else { "" };
            let _ = writeln!(
                out,
                r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
                lx + 18.0,
                s.color,
                lx + 22.0,
                ly + 4.0,
                esc(&s.name)
            );
        }
    }
}

/// Charts side by side, `columns` to a row, as one SVG document with a caption under them (one
/// text line per line of `caption`).
pub fn figure(charts: &[Chart], columns: usize, caption: &str) -> String {
    const LINE: f64 = 15.0;
    let columns = columns.max(1);
    let rows = charts.len().div_ceil(columns).max(1);
    let lines: Vec<&str> = caption.lines().collect();
    let (width, height) = (W * columns as f64, H * rows as f64 + 10.0 + LINE * lines.len() as f64);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (i, c) in charts.iter().enumerate() {
        c.render(&mut out, (i % columns) as f64 * W, (i / columns) as f64 * H);
    }
    for (i, line) in lines.iter().enumerate() {
        let _ = writeln!(
            out,
            r##"<text x="8" y="{:.1}" font-size="11" fill="#555">{}</text>"##,
            H * rows as f64 + 4.0 + LINE * (i as f64 + 1.0),
            esc(line)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_log_ticks() {
        assert_eq!(tick_label(1500.0), "1.5k");
        assert_eq!(tick_label(2_000_000.0), "2M");
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(12.0), "12");
        let a = Axis::of([3.0, 70.0].into_iter(), true);
        assert_eq!((a.lo, a.hi), (1.0, 100.0));
        assert_eq!(a.ticks(), vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]);
        assert!((a.frac(10.0) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn a_figure_is_one_svg_with_every_series() {
        let chart = Chart {
            title: "ingest <ms>".into(),
            x_label: "tracks".into(),
            y_label: "ms".into(),
            log_x: true,
            log_y: true,
            series: vec![Series {
                name: "ours".into(),
                color: "#1f77b4".into(),
                dashed: false,
                points: vec![(25_000.0, 300.0), (100_000.0, 1_200.0)],
            }],
        };
        let svg = figure(&[chart.clone(), chart], 2, "caption");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("ingest &lt;ms&gt;"));
    }
}
