//! SVG line charts, for numbers a README can show (`cargo xtask bench
//! --plot`).
//!
//! One function, [`line_chart`]: a title, two axis labels and named lines,
//! drawn with plotters' SVG backend at 800×400 px. The axes span the data
//! (y from 0 unless a value is negative), every line has its own colour and
//! a legend entry, and a line of few points marks each point. Text is
//! written as SVG `<text>` and laid out with plotters' built-in estimate,
//! so drawing needs no font; the viewer renders it in its sans-serif.
//! Coordinates are whole pixels, which keeps a file of 3 lines × 700
//! points near 20 KB.

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use plotters::prelude::*;

/// One named line of a chart.
pub struct Series {
    /// The legend's name of the line.
    pub name: String,
    /// (x, y) points, drawn in this order.
    pub points: Vec<(f64, f64)>,
}

/// A chart: title, axis labels, lines.
pub struct Chart<'a> {
    /// Shown above the plot.
    pub title: &'a str,
    /// Under the x axis.
    pub x_label: &'a str,
    /// Beside the y axis.
    pub y_label: &'a str,
    /// The lines, in legend order.
    pub series: &'a [Series],
}

/// Width and height of a chart, px.
const SIZE: (u32, u32) = (800, 400);

/// A line with at most this many points also marks each point.
const MARKED_POINTS: usize = 30;

/// Line colours, in series order (Tableau 10's first eight: distinct, and
/// readable by most colour-blind readers); more series reuse them.
const COLOURS: [RGBColor; 8] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xed, 0xc9, 0x48),
];

/// Writes `chart` as an SVG file at `path` (about 800x400 px).
///
/// Fails, without writing, when there is no series, no point at all, or a
/// value that is not finite (NaN, ±∞).
pub fn line_chart(path: &Path, chart: &Chart<'_>) -> Result<()> {
    let (x_range, y_range) = ranges(chart)?;
    let mut svg = String::new();
    draw(&mut svg, chart, x_range, y_range)
        .with_context(|| format!("drawing the chart {:?}", chart.title))?;
    std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))
}

/// The axes' spans: x over the data, y from 0 (or the lowest negative
/// value) to a little above the highest, never empty.
fn ranges(chart: &Chart<'_>) -> Result<(std::ops::Range<f64>, std::ops::Range<f64>)> {
    ensure!(
        !chart.series.is_empty(),
        "the chart {:?} has no series to draw",
        chart.title
    );
    for s in chart.series {
        if let Some(i) = s
            .points
            .iter()
            .position(|(x, y)| !x.is_finite() || !y.is_finite())
        {
            bail!(
                "the chart {:?}: point {i} of {:?} is {:?}, not a finite number",
                chart.title,
                s.name,
                s.points[i]
            );
        }
    }
    let points = || chart.series.iter().flat_map(|s| s.points.iter());
    let Some(&(first_x, _)) = points().next() else {
        bail!("the chart {:?} has no points to draw", chart.title);
    };
    let (mut x_min, mut x_max) = (first_x, first_x);
    let (mut y_min, mut y_max) = (0.0_f64, 0.0_f64);
    for &(x, y) in points() {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    if x_min == x_max {
        let pad = (x_min.abs() * 0.1).max(1.0);
        (x_min, x_max) = (x_min - pad, x_max + pad);
    }
    if y_min == y_max {
        y_max = y_min + 1.0;
    }
    let headroom = (y_max - y_min) * 0.05;
    let y_min = if y_min < 0.0 { y_min - headroom } else { 0.0 };
    Ok((x_min..x_max, y_min..y_max + headroom))
}

fn draw(
    svg: &mut String,
    chart: &Chart<'_>,
    x_range: std::ops::Range<f64>,
    y_range: std::ops::Range<f64>,
) -> Result<()> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut plot = ChartBuilder::on(&root)
        .caption(chart.title, ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range, y_range)?;
    plot.configure_mesh()
        .x_desc(chart.x_label)
        .y_desc(chart.y_label)
        .max_light_lines(0)
        .bold_line_style(RGBColor(0xe4, 0xe4, 0xe4))
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 17))
        .x_label_formatter(&|x| number(*x))
        .y_label_formatter(&|y| number(*y))
        .draw()?;
    for (i, s) in chart.series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let marks = if s.points.len() <= MARKED_POINTS {
            3
        } else {
            0
        };
        plot.draw_series(
            LineSeries::new(s.points.iter().copied(), colour.stroke_width(2)).point_size(marks),
        )?
        .label(s.name.as_str())
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    plot.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(0xb0, 0xb0, 0xb0))
        .label_font(("sans-serif", 16))
        .draw()?;
    root.present()?;
    Ok(())
}

/// An axis label: few digits, thousands as `k`, millions as `M`.
fn number(v: f64) -> String {
    let a = v.abs();
    let short = |v: f64| {
        let s = format!("{v:.1}");
        s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
    };
    if a >= 1e6 {
        format!("{}M", short(v / 1e6))
    } else if a >= 1e3 {
        format!("{}k", short(v / 1e3))
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 0.1 {
        short(v)
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-plot-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        dir
    }

    fn wave(name: &str, n: usize, scale: f64) -> Series {
        Series {
            name: name.to_owned(),
            points: (0..n)
                .map(|i| (i as f64 * 7.5, scale * (1.0 + (i as f64 / 40.0).sin())))
                .collect(),
        }
    }

    #[test]
    fn writes_an_svg_with_title_labels_and_legend_in_little_space() {
        let dir = dir("svg");
        let path = dir.join("chart.svg");
        let series = [
            wave("apply", 700, 3.0),
            wave("multi-row floor", 700, 1.5),
            wave("COPY floor", 700, 0.5),
        ];
        let chart = Chart {
            title: "apply time, postgres",
            x_label: "jobs",
            y_label: "ms",
            series: &series,
        };
        line_chart(&path, &chart).expect("the chart is drawn");

        let svg = std::fs::read_to_string(&path).expect("the chart was written");
        std::fs::remove_dir_all(&dir).expect("the directory is removed");
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.trim_end().ends_with("</svg>"));
        for text in [
            "apply time, postgres",
            "jobs",
            "ms",
            "apply",
            "multi-row floor",
            "COPY floor",
        ] {
            let element = format!(">\n{text}\n</text>");
            assert!(svg.contains(&element), "{element:?} is not in the SVG");
        }
        assert!(svg.len() < 60_000, "the SVG has {} bytes", svg.len());
    }

    #[test]
    fn one_point_and_negative_values_still_draw() {
        let dir = dir("edge");
        let path = dir.join("chart.svg");
        let series = [
            Series {
                name: "single".to_owned(),
                points: vec![(5.0, 2.0)],
            },
            Series {
                name: "below zero".to_owned(),
                points: vec![(5.0, -1.0)],
            },
        ];
        let chart = Chart {
            title: "edges",
            x_label: "x",
            y_label: "y",
            series: &series,
        };
        let drawn = line_chart(&path, &chart);
        std::fs::remove_dir_all(&dir).expect("the directory is removed");
        drawn.expect("the chart is drawn");
        let (x, y) = ranges(&chart).expect("ranges");
        assert!(x.start < 5.0 && x.end > 5.0, "{x:?}");
        assert!(y.start < -1.0 && y.end > 2.0, "{y:?}");
    }

    #[test]
    fn no_series_no_points_or_a_nan_is_an_error_not_a_panic() {
        let path = std::env::temp_dir().join("xtask-plot-never-written.svg");
        let nan = [Series {
            name: "apply".to_owned(),
            points: vec![(1.0, 1.0), (2.0, f64::NAN)],
        }];
        let empty = [Series {
            name: "apply".to_owned(),
            points: Vec::new(),
        }];
        let cases: [(&[Series], &str); 3] = [
            (&[], "has no series to draw"),
            (&empty, "has no points to draw"),
            (
                &nan,
                "point 1 of \"apply\" is (2.0, NaN), not a finite number",
            ),
        ];
        for (series, message) in cases {
            let chart = Chart {
                title: "broken",
                x_label: "x",
                y_label: "y",
                series,
            };
            let error = line_chart(&path, &chart).expect_err("no chart").to_string();
            assert!(error.contains(message), "{error}");
            assert!(!path.exists());
        }
    }

    #[test]
    fn axis_numbers_are_short() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(0.05), "0.05");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(250.0), "250");
        assert_eq!(number(5_000.0), "5k");
        assert_eq!(number(12_500.0), "12.5k");
        assert_eq!(number(2_000_000.0), "2M");
    }
}
