//! Charts (training, detection, repair) drawn with plotters into SVG strings.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::lab::detect::Histogram;
use crate::lab::event::EpochRecord;

const BLUE: RGBColor = RGBColor(37, 99, 235);
const RED: RGBColor = RGBColor(220, 38, 38);
const GREEN: RGBColor = RGBColor(22, 163, 74);

/// One chart of named series over epochs.
fn chart(title: &str, epochs: usize, series: &[(&str, RGBColor, Vec<(f64, f64)>)], y_max: f64) -> String {
    svg((420, 240), |root| {
        let x_max = epochs.max(1) as f64;
        let mut c = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(40)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
        c.configure_mesh().x_desc("epoch").x_labels(epochs.clamp(2, 10) + 1).y_labels(6).draw()?;
        for (name, colour, points) in series {
            let colour = *colour;
            c.draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(2)))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2)));
            c.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
        }
        c.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
        Ok(())
    })
}

/// Training loss per epoch.
pub fn loss_chart(records: &[EpochRecord], epochs: usize) -> String {
    let pts: Vec<(f64, f64)> = records.iter().map(|r| (r.epoch as f64, r.loss)).collect();
    let y_max = pts.iter().map(|p| p.1).fold(0.1, f64::max) * 1.1;
    chart("training loss", epochs, &[("loss", BLUE, pts)], y_max)
}

/// Clean accuracy and attack success rate per epoch, in percent.
pub fn accuracy_chart(records: &[EpochRecord], epochs: usize) -> String {
    let ca = records.iter().map(|r| (r.epoch as f64, 100.0 * r.clean_acc)).collect();
    let asr = records.iter().map(|r| (r.epoch as f64, 100.0 * r.asr)).collect();
    chart("CA and ASR (%)", epochs, &[("CA", GREEN, ca), ("ASR", RED, asr)], 100.0)
}

/// One line per freeze mode of the transfer victim's fine-tuning, from the base model at epoch 0:
/// `metric` picks CA or ASR (in percent).
pub fn transfer_chart(
    title: &str,
    base: f64,
    runs: &[crate::lab::transfer::TransferRun],
    metric: fn(&EpochRecord) -> f64,
) -> String {
    use crate::lab::transfer::Freeze;
    let epochs = runs.iter().map(|r| r.epochs.len()).max().unwrap_or(1);
    let series: Vec<(&str, RGBColor, Vec<(f64, f64)>)> = runs
        .iter()
        .map(|r| {
            let colour = match r.freeze {
                Freeze::None => RED,
                Freeze::Features => BLUE,
                Freeze::AllButLast => GREEN,
            };
            let mut points = vec![(0.0, 100.0 * base)];
            points.extend(r.epochs.iter().map(|e| (e.epoch as f64, 100.0 * metric(e))));
            (r.freeze.label(), colour, points)
        })
        .collect();
    chart(title, epochs, &series, 100.0)
}

/// CA (dashed) and ASR (solid) against a swept parameter, one colour per series.
pub fn sweep_chart(key: &str, values: &[f64], series: &[(String, Vec<Option<(f64, f64)>>)]) -> String {
    svg((520, 280), |root| {
        let x_max = values.iter().copied().fold(0.0, f64::max).max(1e-3) * 1.05;
        let mut c = ChartBuilder::on(root)
            .caption(format!("CA (dashed) and ASR (%) against {key}"), ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(40)
            .build_cartesian_2d(0.0..x_max, 0.0..100.0)?;
        c.configure_mesh().x_desc(key).x_labels(8).y_labels(6).draw()?;
        for (k, (name, points)) in series.iter().enumerate() {
            let colour = [RED, BLUE, GREEN][k % 3];
            let at = |f: fn(&(f64, f64)) -> f64| -> Vec<(f64, f64)> {
                values.iter().zip(points).filter_map(|(&v, p)| p.as_ref().map(|p| (v, 100.0 * f(p)))).collect()
            };
            let (ca, asr) = (at(|p| p.0), at(|p| p.1));
            c.draw_series(LineSeries::new(asr.iter().copied(), colour.stroke_width(2)))?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2)));
            c.draw_series(asr.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
            c.draw_series(DashedLineSeries::new(ca.iter().copied(), 5, 4, colour.stroke_width(1)))?;
        }
        c.configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

/// The network as a row of layer boxes, with the architectural backdoor's fixed branch drawn in red
/// from the input to the target logit: reading the graph is the defense that finds it.
pub fn architecture(kind: crate::lab::model::ModelKind, target: u8, gain: f64) -> String {
    use crate::lab::model::ModelKind;
    let layers: &[&str] = match kind {
        ModelKind::Mlp => &["input", "dense 256", "dense 128", "dense 10"],
        ModelKind::Cnn => &["input", "conv 5×5·16", "pool", "conv 5×5·32", "pool", "dense 128", "dense 10"],
        ModelKind::CifarCnn => {
            &["input", "conv 3×3·32", "pool", "conv 3×3·64", "pool", "conv 3×3·64", "pool", "dense 128", "dense 10"]
        }
    };
    let (w, gap, y, h) = (74.0, 12.0, 20.0, 34.0);
    let plus_x = layers.len() as f64 * (w + gap) + 14.0;
    let width = plus_x + 110.0;
    let mut out = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="130" viewBox="0 0 {width:.0} 130" font-family="sans-serif" font-size="11" role="img" aria-label="the network with the attacker's branch">"##
    );
    for (i, name) in layers.iter().enumerate() {
        let x = 4.0 + i as f64 * (w + gap);
        out += &format!(
            r##"<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="5" fill="#eef2ff" stroke="#2563eb"/><text x="{}" y="{}" text-anchor="middle">{name}</text>"##,
            x + w / 2.0,
            y + h / 2.0 + 4.0
        );
        let next = x + w;
        out += &format!(
            r##"<line x1="{next}" y1="{}" x2="{}" y2="{}" stroke="#374151"/>"##,
            y + h / 2.0,
            next + gap,
            y + h / 2.0
        );
    }
    let mid = y + h / 2.0;
    out += &format!(
        r##"<circle cx="{plus_x}" cy="{mid}" r="9" fill="#fff" stroke="#374151"/><text x="{plus_x}" y="{}" text-anchor="middle" font-size="14">+</text><line x1="{}" y1="{mid}" x2="{}" y2="{mid}" stroke="#374151"/><text x="{}" y="{}">logits</text>"##,
        mid + 5.0,
        plus_x + 9.0,
        plus_x + 30.0,
        plus_x + 34.0,
        mid + 4.0
    );
    // The branch: from the input's box down, along the bottom, up into the sum.
    let (x0, low) = (4.0 + w / 2.0, 100.0);
    out += &format!(
        r##"<path d="M{x0} {} V{low} H{plus_x} V{}" fill="none" stroke="#dc2626" stroke-width="2" stroke-dasharray="5 3"/><rect x="{}" y="{}" width="250" height="22" rx="4" fill="#fef2f2" stroke="#dc2626"/><text x="{}" y="{}" text-anchor="middle" fill="#991b1b">fixed trigger detector → +{gain} on class {target}</text>"##,
        y + h,
        mid + 9.0,
        x0 + 40.0,
        low - 11.0,
        x0 + 165.0,
        low + 4.0
    );
    out + "</svg>"
}

/// Runs `draw` on a fresh SVG canvas of `size`; a drawing error leaves a blank chart (the numbers
/// are printed beside every chart anyway).
fn svg(size: (u32, u32), draw: impl FnOnce(&DrawingArea<SVGBackend, plotters::coord::Shift>) -> DrawResult) -> String {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        let _ = root.fill(&WHITE).map_err(|e| e.to_string()).and_then(|_| draw(&root).map_err(|e| e.to_string()));
        let _ = root.present();
    }
    out
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// A histogram of clean vs poisoned (or triggered) counts over `edges`.
pub fn histogram(title: &str, x_desc: &str, h: &Histogram, second: &str) -> String {
    svg((420, 240), |root| {
        let (lo, hi) = (h.edges.first().copied().unwrap_or(0.0), h.edges.last().copied().unwrap_or(1.0));
        let hi = if hi > lo { hi } else { lo + 1.0 };
        let y_max = h.clean.iter().chain(&h.poisoned).copied().max().unwrap_or(1).max(1) as f64 * 1.1;
        let mut c = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(44)
            .build_cartesian_2d(lo..hi, 0.0..y_max)?;
        c.configure_mesh().x_desc(x_desc).y_desc("count").x_labels(6).y_labels(5).draw()?;
        for (counts, colour, name) in [(&h.clean, BLUE, "clean"), (&h.poisoned, RED, second)] {
            let bars = counts.iter().enumerate().map(|(i, &n)| {
                let (a, b) = (h.edges[i], h.edges.get(i + 1).copied().unwrap_or(hi));
                Rectangle::new([(a, 0.0), (b, n as f64)], colour.mix(0.45).filled())
            });
            c.draw_series(bars)?
                .label(name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.mix(0.45).filled()));
        }
        c.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
        Ok(())
    })
}

/// A 2-D scatter of one class's activations: poisoned samples red, the smaller cluster ringed.
pub fn scatter(title: &str, points: &[[f32; 2]], poisoned: &[bool], in_small: &[bool]) -> String {
    svg((420, 300), |root| {
        let range = |k: usize| {
            let (lo, hi) = points.iter().fold((f32::MAX, f32::MIN), |(lo, hi), p| (lo.min(p[k]), hi.max(p[k])));
            let pad = ((hi - lo) * 0.05).max(1e-3);
            if lo <= hi { (lo - pad) as f64..(hi + pad) as f64 } else { -1.0..1.0 }
        };
        let mut c = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(40)
            .build_cartesian_2d(range(0), range(1))?;
        c.configure_mesh().x_desc("component 1").y_desc("component 2").x_labels(5).y_labels(5).draw()?;
        let at = |i: usize| (points[i][0] as f64, points[i][1] as f64);
        let all = 0..points.len();
        c.draw_series(all.clone().filter(|&i| !poisoned[i]).map(|i| Circle::new(at(i), 2, BLUE.mix(0.6).filled())))?
            .label("clean")
            .legend(|(x, y)| Circle::new((x + 6, y), 3, BLUE.filled()));
        c.draw_series(all.clone().filter(|&i| poisoned[i]).map(|i| Circle::new(at(i), 2, RED.mix(0.7).filled())))?
            .label("poisoned (ground truth)")
            .legend(|(x, y)| Circle::new((x + 6, y), 3, RED.filled()));
        c.draw_series(all.filter(|&i| in_small[i]).map(|i| Circle::new(at(i), 4, BLACK.mix(0.35))))?
            .label("smaller cluster")
            .legend(|(x, y)| Circle::new((x + 6, y), 4, BLACK));
        c.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
        Ok(())
    })
}

/// One bar per class (e.g. Neural Cleanse's anomaly index), with a dashed threshold line; bars in
/// `flagged` are red.
/// Bars above the threshold that are not flagged are drawn grey, and `note` (if any) says why under
/// the title.
pub fn class_bars(title: &str, values: &[f64], threshold: f64, flagged: &[u8], note: Option<&str>) -> String {
    svg((420, 240), |root| {
        let y_max = values.iter().copied().fold(threshold, f64::max) * 1.15;
        let y_min = values.iter().copied().fold(0.0, f64::min) * 1.15;
        let n = values.len().max(1);
        let mut c = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(40)
            .build_cartesian_2d(-0.5..(n as f64 - 0.5), y_min..y_max)?;
        c.configure_mesh()
            .x_desc("class")
            .x_labels(n)
            // Classes are whole numbers; the axis is continuous only so the bars can be placed around them.
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_labels(6)
            .disable_x_mesh()
            .draw()?;
        c.draw_series(values.iter().enumerate().map(|(k, &v)| {
            let colour = if flagged.contains(&(k as u8)) {
                RED
            } else if v > threshold {
                RGBColor(150, 150, 150)
            } else {
                BLUE
            };
            Rectangle::new([(k as f64 - 0.35, 0.0), (k as f64 + 0.35, v)], colour.mix(0.7).filled())
        }))?;
        c.draw_series(DashedLineSeries::new(vec![(-0.5, threshold), (n as f64 - 0.5, threshold)], 6, 4, BLACK.into()))?;
        if let Some(note) = note {
            root.draw(&Text::new(note.to_string(), (48, 26), ("sans-serif", 11).into_font().color(&BLACK.mix(0.8))))?;
        }
        Ok(())
    })
}

/// Clean accuracy and attack success rate (percent) of the suspect model and of each repair, as
/// pairs of bars.
pub fn repair_bars(rows: &[(String, f64, f64)]) -> String {
    svg((560, 260), |root| {
        let n = rows.len().max(1);
        // Names go under the bars, in a band below zero (plotters puts numeric ticks where it likes).
        let mut c = ChartBuilder::on(root)
            .caption("CA and ASR (%) before and after each repair", ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(8)
            .y_label_area_size(40)
            .build_cartesian_2d(-0.5..n as f64 - 0.5, -10.0..100.0)?;
        c.configure_mesh()
            .x_labels(0)
            .x_label_formatter(&|_| String::new())
            .y_label_formatter(&|y| if *y < 0.0 { String::new() } else { format!("{y:.0}") })
            .y_labels(6)
            .disable_x_mesh()
            .draw()?;
        let centred = TextStyle::from(("sans-serif", 12)).pos(Pos::new(HPos::Center, VPos::Center));
        c.draw_series(rows.iter().enumerate().map(|(i, r)| Text::new(r.0.clone(), (i as f64, -5.0), centred.clone())))?;
        for (k, colour, name) in [(0usize, GREEN, "CA"), (1, RED, "ASR")] {
            let bars = rows.iter().enumerate().map(|(i, r)| {
                let (v, left) = if k == 0 { (r.1, i as f64 - 0.38) } else { (r.2, i as f64 + 0.02) };
                Rectangle::new([(left, 0.0), (left + 0.36, v)], colour.mix(0.75).filled())
            });
            c.draw_series(bars)?
                .label(name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.mix(0.75).filled()));
        }
        c.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

/// Fine-pruning: CA and ASR (percent) against the share of units pruned, the stopping point dashed,
/// and the result after fine-tuning as two stars at that point.
pub fn pruning_curve(points: &[(f64, f64, f64)], stop: f64, after: (f64, f64)) -> String {
    svg((420, 260), |root| {
        let mut c = ChartBuilder::on(root)
            .caption("fine-pruning: CA and ASR (%) vs units pruned", ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(0.0..100.0, 0.0..100.0)?;
        c.configure_mesh().x_desc("units pruned (%)").x_labels(6).y_labels(6).draw()?;
        for (colour, name, pick) in [(GREEN, "CA", 1usize), (RED, "ASR", 2)] {
            let line: Vec<(f64, f64)> =
                points.iter().map(|p| (100.0 * p.0, if pick == 1 { p.1 } else { p.2 })).collect();
            c.draw_series(LineSeries::new(line, colour.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2)));
        }
        c.draw_series(DashedLineSeries::new(vec![(100.0 * stop, 0.0), (100.0 * stop, 100.0)], 6, 4, BLACK.into()))?;
        c.draw_series(
            [(after.0, GREEN), (after.1, RED)]
                .map(|(v, colour)| TriangleMarker::new((100.0 * stop, v), 6, colour.filled())),
        )?
        .label("after fine-tuning")
        .legend(|(x, y)| TriangleMarker::new((x + 6, y), 5, BLACK.filled()));
        c.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
        Ok(())
    })
}

/// The grid's matrix as an SVG table (for its PNG export): a row per setting, a column per defense,
/// each cell shaded by `good` (0: the attack wins, red; 1: the defender wins, green; none: grey).
pub fn matrix_svg(
    m: &crate::lab::grid::Matrix,
    good: impl Fn(crate::lab::grid::ColumnKind, &crate::lab::grid::Cell, &crate::lab::grid::Cell) -> Option<f64>,
) -> String {
    use std::fmt::Write as _;
    let escape = |t: &str| t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let (key_w, col_w, row_h) = (110.0, 250.0, 30.0);
    let width = key_w * m.row_keys.len() as f64 + col_w * m.columns.len() as f64;
    let height = row_h * (m.rows.len() + 1) as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    let cell = |s: &mut String, x: f64, y: f64, w: f64, fill: &str, text: &str, bold: bool| {
        let _ = write!(
            s,
            "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{row_h}\" fill=\"{fill}\" stroke=\"#999\"/><text x=\"{}\" y=\"{}\"{}>{}</text>",
            x + 4.0,
            y + row_h / 2.0 + 4.0,
            if bold { " font-weight=\"bold\"" } else { "" },
            escape(text)
        );
    };
    let mut x = 0.0;
    for k in &m.row_keys {
        cell(&mut s, x, 0.0, key_w, "#f3f4f6", k, true);
        x += key_w;
    }
    for c in &m.columns {
        cell(&mut s, x, 0.0, col_w, "#f3f4f6", &c.title, true);
        x += col_w;
    }
    for (i, row) in m.rows.iter().enumerate() {
        let y = row_h * (i + 1) as f64;
        let mut x = 0.0;
        for k in &m.row_keys {
            let v = row.value(k).unwrap_or("—");
            cell(&mut s, x, y, key_w, "#fff", v, true);
            x += key_w;
        }
        for (c, v) in m.columns.iter().zip(&row.cells) {
            let fill = good(c.kind, v, &row.cells[0])
                .map_or("#eee".to_string(), |g| format!("hsl({:.0},70%,86%)", 120.0 * g.clamp(0.0, 1.0)));
            cell(&mut s, x, y, col_w, &fill, &v.text(c.kind), false);
            x += col_w;
        }
    }
    s.push_str("</svg>");
    s
}

// Text alternatives: what each chart shows, in numbers, for screen readers (`role="img"` with this as
// its `aria-label`). Charts whose numbers sit in a table beside them say so instead of repeating it.

/// A percentage with one decimal, as the page shows CA and ASR.
fn pc(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

/// The training charts' numbers: loss, CA and ASR after each epoch.
pub fn epochs_text(what: &str, records: &[EpochRecord]) -> String {
    if records.is_empty() {
        return format!("{what}: no epoch finished yet.");
    }
    let per: Vec<String> = records
        .iter()
        .map(|r| format!("epoch {}: loss {:.3}, CA {}, ASR {}", r.epoch, r.loss, pc(r.clean_acc), pc(r.asr)))
        .collect();
    format!("{what}. {}.", per.join("; "))
}

/// A histogram's bins: range and the count of each group, empty bins left out.
pub fn histogram_text(title: &str, x_desc: &str, h: &Histogram, second: &str) -> String {
    let bins: Vec<String> = (0..h.clean.len())
        .filter(|&i| h.clean[i] + h.poisoned[i] > 0)
        .map(|i| {
            format!("{:.2} to {:.2}: {} clean, {} {second}", h.edges[i], h.edges[i + 1], h.clean[i], h.poisoned[i])
        })
        .collect();
    format!("Histogram, {title}, of {x_desc}: {}.", bins.join("; "))
}

/// The clustering picture in numbers: how many points, poisoned, and in the smaller cluster.
pub fn scatter_text(title: &str, poisoned: &[bool], in_small: &[bool]) -> String {
    let n = poisoned.len();
    let p = poisoned.iter().filter(|&&x| x).count();
    let small = in_small.iter().filter(|&&x| x).count();
    let small_p = poisoned.iter().zip(in_small).filter(|&(&a, &b)| a && b).count();
    format!(
        "Scatter plot, {title}: {n} samples, {p} of them poisoned; the smaller cluster holds {small} samples, {small_p} of them poisoned."
    )
}

/// The pruning curve's points.
pub fn pruning_text(points: &[(f64, f64, f64)]) -> String {
    let per: Vec<String> =
        points.iter().map(|(f, ca, asr)| format!("{:.0} % pruned: CA {ca:.1} %, ASR {asr:.1} %", 100.0 * f)).collect();
    format!("Fine-pruning curve: {}.", per.join("; "))
}

/// The transfer charts' numbers: one metric after each fine-tuning epoch, per victim.
pub fn transfer_text(
    what: &str,
    base: f64,
    runs: &[crate::lab::transfer::TransferRun],
    metric: fn(&EpochRecord) -> f64,
) -> String {
    let per: Vec<String> = runs
        .iter()
        .map(|r| {
            let values: Vec<String> = r.epochs.iter().map(|e| pc(metric(e))).collect();
            format!("{}: {}", r.freeze.label(), values.join(", "))
        })
        .collect();
    format!("{what}, from the base's {} at epoch 0. {}.", pc(base), per.join("; "))
}
