//! Training charts drawn with plotters into SVG strings.

use plotters::prelude::*;

use crate::lab::event::EpochRecord;

const BLUE: RGBColor = RGBColor(37, 99, 235);
const RED: RGBColor = RGBColor(220, 38, 38);
const GREEN: RGBColor = RGBColor(22, 163, 74);

/// One chart of named series over epochs; `percent` scales [0, 1] values to 0–100 %.
fn chart(title: &str, epochs: usize, series: &[(&str, RGBColor, Vec<(f64, f64)>)], y_max: f64) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (420, 240)).into_drawing_area();
        let draw = || -> Result<(), Box<dyn std::error::Error + '_>> {
            root.fill(&WHITE)?;
            let x_max = epochs.max(1) as f64;
            let mut c = ChartBuilder::on(&root)
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
            root.present()?;
            Ok(())
        };
        // A drawing error leaves a blank chart; the numbers are shown beside it anyway.
        let _ = draw();
    }
    svg
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
