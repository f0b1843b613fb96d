//! SVG plots (plotters, SVG backend only: no system fonts needed).

use std::io;
use std::path::Path;

use plotters::prelude::*;

use crate::report::{lat, size};
use crate::{Results, LATENCY_TRANSPORTS, SWEEP_SIZES, SWEEP_TRANSPORTS};

fn perr(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("plot: {e}"))
}

const COLORS: &[RGBColor] = &[
    RGBColor(0, 0, 0),
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(23, 190, 207),
];

/// Writes every plot into `out`.
pub fn all(r: &Results, out: &Path) -> io::Result<()> {
    latency_vs_size(r, &out.join("latency_vs_size.svg"))?;
    let l8: Vec<(String, f64)> = LATENCY_TRANSPORTS
        .iter()
        .filter_map(|t| lat(&r.latency, t, 8).map(|x| (t.to_string(), x.p50_ns / 1e3)))
        .collect();
    hbar(
        &out.join("latency_8B.svg"),
        "one-way latency, 8 B, p50 (lower is better)",
        "µs",
        &l8,
    )?;
    for (sz, name, unit, scale) in [
        (64usize, "throughput_64B.svg", "M messages/s", 1e6),
        (1 << 20, "throughput_1MiB.svg", "GB/s", 0.0),
    ] {
        let items: Vec<(String, f64)> = r
            .throughput
            .iter()
            .filter(|x| x.size == sz)
            // memcpy (64 B) and loans (1 MiB) would squash every other bar.
            .filter(|x| {
                !matches!(
                    (x.transport.as_str(), sz),
                    ("memcpy", 64) | ("memlane-loan", 1_048_576)
                )
            })
            .map(|x| {
                let v = if scale > 0.0 {
                    x.msgs_per_s / scale
                } else {
                    x.bytes_per_s / 1e9
                };
                (x.transport.clone(), v)
            })
            .collect();
        let title = format!("throughput, {} messages (higher is better)", size(sz));
        hbar(&out.join(name), &title, unit, &items)?;
    }
    fanout(r, &out.join("fanout.svg"))
}

fn latency_vs_size(r: &Results, path: &Path) -> io::Result<()> {
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(perr)?;
    let ymax = r.sweep.iter().map(|x| x.p50_ns).fold(1.0, f64::max) * 1.5;
    let ymin = r
        .sweep
        .iter()
        .map(|x| x.p50_ns)
        .fold(f64::MAX, f64::min)
        .max(1.0)
        / 1.5;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "one-way latency (p50) versus message size",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (SWEEP_SIZES[0] as f64..*SWEEP_SIZES.last().unwrap_or(&8) as f64).log_scale(),
            (ymin..ymax).log_scale(),
        )
        .map_err(perr)?;
    chart
        .configure_mesh()
        .x_desc("message size")
        .y_desc("ns")
        .x_label_formatter(&|v| size(*v as usize))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(perr)?;
    for (i, t) in SWEEP_TRANSPORTS.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let pts: Vec<(f64, f64)> = SWEEP_SIZES
            .iter()
            .filter_map(|&s| lat(&r.sweep, t, s).map(|x| (s as f64, x.p50_ns)))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(perr)?
            .label(*t)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))
            .map_err(perr)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(perr)?;
    root.present().map_err(perr)
}

fn hbar(path: &Path, title: &str, unit: &str, items: &[(String, f64)]) -> io::Result<()> {
    let h = 90 + 34 * items.len() as u32;
    let root = SVGBackend::new(path, (900, h)).into_drawing_area();
    root.fill(&WHITE).map_err(perr)?;
    let xmax = items.iter().map(|x| x.1).fold(0.0, f64::max).max(1e-9) * 1.15;
    let n = items.len().max(1);
    let labels: Vec<String> = items.iter().map(|x| x.0.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(130)
        .build_cartesian_2d(0.0..xmax, 0.0..n as f64)
        .map_err(perr)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(unit)
        .y_labels(n * 2 + 1)
        .y_label_formatter(&|v| {
            let i = (n as f64 - v - 0.5).round();
            if (n as f64 - v - 0.5 - i).abs() < 0.01 && i >= 0.0 && (i as usize) < labels.len() {
                labels[i as usize].clone()
            } else {
                String::new()
            }
        })
        .draw()
        .map_err(perr)?;
    chart
        .draw_series(items.iter().enumerate().map(|(i, (name, v))| {
            let y = (n - i) as f64;
            let c = if name.starts_with("memlane") {
                COLORS[1]
            } else if name.starts_with("floor") || name == "memcpy" {
                COLORS[0]
            } else {
                COLORS[2]
            };
            Rectangle::new([(0.0, y - 0.8), (*v, y - 0.2)], c.filled())
        }))
        .map_err(perr)?;
    chart
        .draw_series(items.iter().enumerate().map(|(i, (_, v))| {
            let y = (n - i) as f64 - 0.35;
            Text::new(format!(" {v:.2}"), (*v, y), ("sans-serif", 13))
        }))
        .map_err(perr)?;
    root.present().map_err(perr)
}

fn fanout(r: &Results, path: &Path) -> io::Result<()> {
    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(perr)?;
    let ymax = r
        .fanout_latency
        .iter()
        .map(|x| x.p99_ns)
        .fold(1.0, f64::max)
        * 1.2;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "memlane fan-out: one-way latency, 8 B (p50 and p99)",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.5f64..8.5, 0.0..ymax)
        .map_err(perr)?;
    chart
        .configure_mesh()
        .x_desc("subscribers")
        .y_desc("ns")
        .draw()
        .map_err(perr)?;
    for (i, (label, f)) in [
        (
            "p50",
            (|x: &memlane_benchkit::LatencyResult| x.p50_ns) as fn(&_) -> f64,
        ),
        ("p99", |x: &memlane_benchkit::LatencyResult| x.p99_ns),
    ]
    .into_iter()
    .enumerate()
    {
        let c = COLORS[i + 1];
        let pts: Vec<(f64, f64)> = r
            .fanout_latency
            .iter()
            .map(|x| (f64::from(x.subscribers), f(x)))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(perr)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))
            .map_err(perr)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(perr)?;
    root.present().map_err(perr)
}
