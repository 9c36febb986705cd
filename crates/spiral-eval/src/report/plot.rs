//! Line plots of [`Curve`]s as SVG and PNG, with plotters.
//!
//! Nothing can be downloaded at run time and system fonts may be missing, so text is drawn with
//! plotters' pure-Rust `ab_glyph` renderer from Noto Sans Regular, embedded from the
//! `ttf-noto-sans` crate (registered once, as the `sans-serif` family). SVG keeps text as text;
//! PNG rasterises it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::EvalError;
use crate::scaling::Curve;

/// Size of the images, in pixels.
const SIZE: (u32, u32) = (900, 560);

/// How the x axis is scaled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// Linear (rounds).
    #[default]
    Linear,
    /// Logarithmic in base 2 (samples, tokens); ticks are labelled with the compute itself.
    Log2,
}

/// One plot: several curves on shared, labelled axes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// File stem of the images (`<name>.svg`, `<name>.png`).
    pub name: String,
    /// Caption.
    pub title: String,
    /// x-axis label, with its unit.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// x-axis scale.
    pub x_scale: Scale,
    /// The curves; points with intervals get error bars.
    pub curves: Vec<Curve>,
}

impl Figure {
    /// Writes `<dir>/<name>.svg` and `<dir>/<name>.png`; returns their paths.
    pub fn write(&self, dir: &Path) -> Result<(PathBuf, PathBuf), EvalError> {
        register_font()?;
        let svg = dir.join(format!("{}.svg", self.name));
        let png = dir.join(format!("{}.png", self.name));
        let fail = |path: &Path| {
            let path = path.to_owned();
            move |message: String| EvalError::Plot { path, message }
        };
        self.draw(SVGBackend::new(&svg, SIZE).into_drawing_area()).map_err(fail(&svg))?;
        self.draw(BitMapBackend::new(&png, SIZE).into_drawing_area()).map_err(fail(&png))?;
        Ok((svg, png))
    }

    /// The x range (transformed) and the y range, padded.
    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let points = || self.curves.iter().flat_map(|c| &c.points);
        let xs: Vec<f64> = points().map(|p| self.x(p.x)).collect();
        let ys =
            points().flat_map(|p| [p.y, p.ci.map_or(p.y, |c| c.lo), p.ci.map_or(p.y, |c| c.hi)]);
        let (x0, x1) = min_max(xs.into_iter()).unwrap_or((0.0, 1.0));
        let (y0, y1) = min_max(ys).unwrap_or((0.0, 1.0));
        let pad_x = ((x1 - x0) * 0.04).max(0.25);
        // Accuracies start at 0 and end at the next tenth above the data (at most 1), so small
        // ones stay readable and the scale still shows how far they are from 1.
        let (y0, y1) = if y0 >= 0.0 && y1 <= 1.0 {
            (0.0, ((y1 * 1.15 * 10.0).ceil() / 10.0).clamp(0.1, 1.0))
        } else {
            (y0, y1)
        };
        let pad_y = ((y1 - y0) * 0.04).max(0.01);
        ((x0 - pad_x, x1 + pad_x), (y0 - pad_y, y1 + pad_y))
    }

    /// A compute value in axis coordinates.
    fn x(&self, x: f64) -> f64 {
        match self.x_scale {
            Scale::Linear => x,
            Scale::Log2 => x.log2(),
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String> {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let ((x0, x1), (y0, y1)) = self.ranges();
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, ("sans-serif", 26))
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(72)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| err(&e))?;
        let scale = self.x_scale;
        let tick = move |v: &f64| match scale {
            Scale::Linear => trim(*v),
            Scale::Log2 => trim(2f64.powf(*v)),
        };
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            // As many labels as whole numbers in range (at most 12), so that the ticks fall on
            // whole rounds and, on a log2 axis, on powers of two.
            .x_labels(((x1.floor() - x0.ceil()) as usize + 1).clamp(2, 12))
            .y_labels(11)
            .x_label_formatter(&tick)
            .y_label_formatter(&|v| trim(*v))
            .axis_desc_style(("sans-serif", 20))
            .label_style(("sans-serif", 16))
            .light_line_style(RGBColor(246, 246, 246))
            .draw()
            .map_err(|e| err(&e))?;
        for (i, curve) in self.curves.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let points: Vec<(f64, f64)> = curve.points.iter().map(|p| (self.x(p.x), p.y)).collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(curve.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 24, y)], color.stroke_width(3))
                });
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(|e| err(&e))?;
            let bars = curve.points.iter().filter_map(|p| {
                p.ci.map(|ci| {
                    ErrorBar::new_vertical(self.x(p.x), ci.lo, p.y, ci.hi, color.stroke_width(1), 8)
                })
            });
            chart.draw_series(bars).map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 16))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))
    }
}

/// A tick label: integers without decimals, others with up to 3 significant decimals.
fn trim(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round())
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// Registers the embedded font once per process.
fn register_font() -> Result<(), EvalError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, ttf_noto_sans::REGULAR)
            .is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(EvalError::Plot {
            path: PathBuf::from("<font>"),
            message: "the embedded Noto Sans font did not load".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::bootstrap::Interval;
    use crate::scaling::CurvePoint;

    fn figure(scale: Scale) -> Figure {
        let with_ci = Curve {
            label: "maj@k".into(),
            points: [1.0, 2.0, 4.0, 8.0]
                .iter()
                .map(|&x: &f64| {
                    let y = 0.3 + 0.05 * x.log2();
                    CurvePoint { x, y, ci: Some(Interval { lo: y - 0.04, hi: y + 0.04 }) }
                })
                .collect(),
        };
        Figure {
            name: "passk".into(),
            title: "pass@k and maj@k".into(),
            x_label: "samples k".into(),
            y_label: "accuracy".into(),
            x_scale: scale,
            curves: vec![
                Curve::new("pass@k", [(1.0, 0.3), (2.0, 0.45), (4.0, 0.6), (8.0, 0.7)]),
                with_ci,
            ],
        }
    }

    #[test]
    fn writes_svg_with_labelled_axes_and_a_png_with_drawn_text() {
        let dir = tempfile::tempdir().unwrap();
        for scale in [Scale::Log2, Scale::Linear] {
            let (svg, png) = figure(scale).write(dir.path()).unwrap();
            let text = std::fs::read_to_string(&svg).unwrap();
            // plotters writes each text element's content on a line of its own.
            for label in ["pass@k and maj@k", "samples k", "accuracy", "maj@k", "8", "0.5", "1"] {
                assert!(text.contains(&format!(">\n{label}\n</text>")), "{scale:?}: no {label}");
            }
            // Whole-number ticks only: no 1.414 (2^0.5) on the log axis, no 0.5 rounds.
            assert!(!text.contains("1.414") && !text.contains(">\n1.5\n<"), "{scale:?}");
            let bytes = std::fs::read(&png).unwrap();
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
            assert!(bytes.len() > 10_000, "{} bytes", bytes.len());
        }
    }

    #[test]
    fn tick_labels() {
        assert_eq!(trim(8.0), "8");
        assert_eq!(trim(2f64.powf(0.5)), "1.414");
        assert_eq!(trim(0.5), "0.5");
        assert_eq!(trim(1024.0000000001), "1024");
    }

    #[test]
    fn ranges_cover_intervals_and_start_accuracies_at_zero() {
        let f = figure(Scale::Log2);
        let ((x0, x1), (y0, y1)) = f.ranges();
        // Below 0.9 the axis stops short of 1: at the next tenth above 1.15 x the data, padded.
        assert!(x0 < 0.0 && x1 > 3.0 && y0 < 0.0 && y0 > -0.05, "{y0}");
        assert!(y1 > 0.6 && y1 < 1.0, "{y1}");
        let mut high = figure(Scale::Linear);
        high.curves = vec![Curve::new("acc", [(1.0, 0.2), (2.0, 0.95)])];
        let (_, (_, y1)) = high.ranges();
        assert!(y1 > 1.0 && y1 < 1.1, "near-1 accuracies get the whole unit interval: {y1}");
        let mut wide = figure(Scale::Linear);
        wide.curves = vec![Curve::new("tokens", [(1.0, 10.0), (2.0, 250.0)])];
        let (_, (y0, y1)) = wide.ranges();
        assert!(y0 < 10.0 && y1 > 250.0 && y0 > 0.0);
    }
}
