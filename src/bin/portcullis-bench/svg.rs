//! `bench/latency.svg`: p50 (solid) and p99 (dashed) latency against offered rate, both axes
//! logarithmic, one colour per target, from the frontier runs. Hand-written SVG, no library.

use std::fmt::Write as _;

use crate::frontier::{BOUND_MS, Frontier, Point};
use crate::suite::Who;

const W: f64 = 900.0;
const H: f64 = 540.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

fn colour(who: Who) -> &'static str {
    match who {
        Who::Direct => "#555555",
        Who::Relay => "#2ca02c",
        Who::Portcullis => "#1f77b4",
        Who::UnderAttack => "#ff7f0e",
        Who::Pool10 => "#9467bd",
        Who::VirtualKey => "#8c564b",
        Who::VirtualKeyRedis => "#e377c2",
        Who::PortcullisRedis => "#17becf",
        Who::UnderAttackRedis => "#bcbd22",
        Who::LiteLlm => "#d62728",
        Who::Nginx => "#009a44",
        Who::Haproxy => "#7f7f7f",
        Who::HaproxyH2 => "#aec7e8",
    }
}

/// A log-scale axis mapping `[lo, hi]` (decades) onto `[a, b]` pixels.
struct Axis {
    lo: f64,
    hi: f64,
    a: f64,
    b: f64,
}

impl Axis {
    fn new(min: f64, max: f64, a: f64, b: f64) -> Self {
        let lo = min.log10().floor();
        let hi = max.log10().ceil().max(lo + 1.0);
        Self { lo, hi, a, b }
    }

    fn at(&self, v: f64) -> f64 {
        self.a + (v.log10() - self.lo) / (self.hi - self.lo) * (self.b - self.a)
    }

    /// 1, 2, 5 × each decade inside the axis.
    fn ticks(&self) -> Vec<(f64, bool)> {
        let mut t = Vec::new();
        #[allow(clippy::cast_possible_truncation)]
        let (lo, hi) = (self.lo as i32, self.hi as i32);
        for d in lo..=hi {
            for m in [1.0, 2.0, 5.0] {
                let v = m * 10f64.powi(d);
                if v.log10() <= self.hi + 1e-9 {
                    t.push((v, m == 1.0));
                }
            }
        }
        t
    }
}

fn label(v: f64) -> String {
    if v >= 1000.0 {
        format!("{}k", v / 1000.0)
    } else if v >= 1.0 {
        format!("{v}")
    } else {
        format!("{v:.2}").trim_end_matches('0').to_owned()
    }
}

fn series(out: &mut String, pts: &[&Point], x: &Axis, y: &Axis, who: Who, p99: bool) {
    let c = colour(who);
    let coords: Vec<(f64, f64, bool)> = pts
        .iter()
        .filter(|p| p.summary.count > 0)
        .map(|p| {
            let v = if p99 { p.summary.p99 } else { p.summary.p50 };
            (x.at(p.rate), y.at(v.max(10f64.powf(y.lo))), p.errors > 0)
        })
        .collect();
    let path: Vec<String> = coords
        .iter()
        .map(|(a, b, _)| format!("{a:.1},{b:.1}"))
        .collect();
    let dash = if p99 { " stroke-dasharray=\"6 4\"" } else { "" };
    let _ = writeln!(
        out,
        "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
        path.join(" ")
    );
    for (a, b, err) in coords {
        let fill = if err { "white" } else { c };
        let _ = writeln!(
            out,
            "<circle cx=\"{a:.1}\" cy=\"{b:.1}\" r=\"3\" fill=\"{fill}\" stroke=\"{c}\"/>"
        );
    }
}

/// The chart, or a note when there is nothing to plot.
pub(crate) fn chart(f: &Frontier) -> String {
    let pts: Vec<&Point> = f.points.iter().filter(|p| p.summary.count > 0).collect();
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{LEFT}\" y=\"24\" font-size=\"15\" font-weight=\"bold\">Latency vs offered rate \
         (non-streaming chat completion, open loop, loopback)</text>\n"
    );
    if pts.is_empty() {
        out.push_str("<text x=\"70\" y=\"80\">no frontier runs were measured</text>\n</svg>\n");
        return out;
    }
    let (rmin, rmax) = pts
        .iter()
        .fold((f64::MAX, 0f64), |(a, b), p| (a.min(p.rate), b.max(p.rate)));
    let lmax = pts.iter().fold(BOUND_MS, |a, p| a.max(p.summary.p99));
    let lmin = pts
        .iter()
        .fold(1.0f64, |a, p| a.min(p.summary.p50.max(0.01)));
    let x = Axis::new(rmin, rmax, LEFT, W - RIGHT);
    let y = Axis::new(lmin, lmax, H - BOTTOM, TOP);
    for (v, major) in x.ticks() {
        let px = x.at(v);
        let stroke = if major { "#ccc" } else { "#eee" };
        let _ = writeln!(
            out,
            "<line x1=\"{px:.1}\" y1=\"{TOP}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"{stroke}\"/>\
             <text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            H - BOTTOM,
            H - BOTTOM + 16.0,
            label(v)
        );
    }
    for (v, major) in y.ticks() {
        let py = y.at(v);
        let stroke = if major { "#ccc" } else { "#eee" };
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{py:.1}\" x2=\"{:.1}\" y2=\"{py:.1}\" stroke=\"{stroke}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            py + 4.0,
            label(v)
        );
    }
    let bound = y.at(BOUND_MS);
    let _ = writeln!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{bound:.1}\" x2=\"{:.1}\" y2=\"{bound:.1}\" stroke=\"#999\" stroke-dasharray=\"2 3\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#666\">p99 bound {BOUND_MS} ms</text>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">offered rate (requests/s, log scale)</text>\n\
         <text transform=\"translate(18 {:.1}) rotate(-90)\" text-anchor=\"middle\">latency, ms (log scale)</text>",
        W - RIGHT,
        LEFT + 6.0,
        bound - 5.0,
        (LEFT + W - RIGHT) / 2.0,
        H - 20.0,
        (TOP + H - BOTTOM) / 2.0
    );
    let mut legend_y = TOP + 10.0;
    for who in [Who::Direct, Who::Nginx, Who::Portcullis, Who::LiteLlm] {
        let mut mine: Vec<&Point> = pts.iter().copied().filter(|p| p.who == who).collect();
        if mine.is_empty() {
            continue;
        }
        mine.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        series(&mut out, &mine, &x, &y, who, false);
        series(&mut out, &mine, &x, &y, who, true);
        let lx = W - RIGHT + 20.0;
        let c = colour(who);
        for (i, (name, dash)) in [("p50", ""), ("p99", " stroke-dasharray=\"6 4\"")]
            .iter()
            .enumerate()
        {
            #[allow(clippy::cast_precision_loss)]
            let ly = legend_y + i as f64 * 18.0;
            let _ = writeln!(
                out,
                "<line x1=\"{lx}\" y1=\"{ly}\" x2=\"{:.1}\" y2=\"{ly}\" stroke=\"{c}\" stroke-width=\"2\"{dash}/>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{} {name}</text>",
                lx + 30.0,
                lx + 36.0,
                ly + 4.0,
                who.label()
            );
        }
        legend_y += 44.0;
    }
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#666\">hollow: run had errors</text>\n</svg>",
        W - RIGHT + 20.0,
        legend_y + 4.0
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Summary;

    #[test]
    fn chart_has_one_series_pair_per_target() {
        let point = |who, rate, p50, p99| Point {
            who,
            rate,
            summary: Summary {
                count: 10,
                p50,
                p99,
                ..Summary::default()
            },
            errors: 0,
            offered: 10,
            achieved: rate,
            lag_p99: 0.0,
        };
        let f = Frontier {
            points: vec![
                point(Who::Direct, 1000.0, 0.1, 0.5),
                point(Who::Direct, 2000.0, 0.2, 0.9),
                point(Who::Portcullis, 1000.0, 0.2, 0.7),
            ],
            notes: vec![],
        };
        let svg = chart(&f);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert!(!svg.contains("NaN"));
    }
}
