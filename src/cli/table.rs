//! The results table printed at the end of a run.

use std::fmt::Write as _;

use backdoor_lab::lab::run::Report;

pub fn render(r: &Report) -> String {
    let m = &r.final_metrics;
    let pct = |x: f64| format!("{:5.1} %", 100.0 * x);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n  {} · {} · {} · ρ = {} · target {}",
        r.spec.data.dataset.name(),
        r.spec.attack.method.name(),
        r.spec.model.name(),
        r.spec.attack.poison_rate,
        r.spec.attack.target_label
    );
    let _ = writeln!(s, "  ┌──────────────────────────────┬─────────┐");
    for (name, v) in [
        ("clean accuracy (CA)", m.clean_acc),
        ("attack success rate (ASR)", m.asr),
        ("robust accuracy (RA)", m.robust_acc),
    ] {
        let _ = writeln!(s, "  │ {name:<28} │ {} │", pct(v));
    }
    let _ = writeln!(s, "  └──────────────────────────────┴─────────┘");
    let names = r.spec.data.dataset.class_names();
    let per_class: Vec<String> =
        m.per_class_acc.iter().zip(names).map(|(a, name)| format!("{name}:{:.0}", 100.0 * a)).collect();
    let _ = writeln!(s, "  per-class CA %  {}", per_class.join("  "));
    let _ = writeln!(
        s,
        "  poisoned {} of {} training samples ({:.0} % of the target class)",
        r.poison.count,
        r.spec.data.train_size,
        100.0 * r.poison.target_class_share
    );
    let _ = writeln!(
        s,
        "  {}: train {:.1} s ({:.0} samples/s), total {:.1} s",
        r.device, r.seconds.train, r.train_samples_per_second, r.seconds.total
    );
    detection(&mut s, r);
    s
}

/// The detection section: one line per detector that ran.
fn detection(s: &mut String, r: &Report) {
    let d = &r.detect;
    if d.is_empty() {
        return;
    }
    let auroc = |a: Option<f64>| a.map_or("  —  ".to_string(), |a| format!("{a:.3}"));
    let _ = writeln!(s, "\n  detection ({:.1} s)", d.seconds);
    if let Some(nc) = &d.nc {
        let idx: Vec<String> = nc.anomaly_index.iter().map(|a| format!("{a:.1}")).collect();
        let flagged = if nc.flagged_classes.is_empty() {
            "none".to_string()
        } else {
            nc.flagged_classes.iter().map(u8::to_string).collect::<Vec<_>>().join(", ")
        };
        let _ = writeln!(
            s,
            "  neural cleanse        flagged classes: {flagged}  ({} steps, {:.1} s)\n                        anomaly index per class: {}",
            nc.steps_run,
            nc.seconds,
            idx.join(" ")
        );
    }
    let _ = writeln!(
        s,
        "  {:<21} {:>6} {:>6} {:>9} {:>6} {:>6} {:>8}",
        "data filter", "TPR", "FPR", "precision", "F1", "AUROC", "seconds"
    );
    for (name, score, seconds) in [
        ("activation clustering", d.ac.as_ref().map(|x| (&x.score, x.seconds))),
        ("spectral signatures", d.ss.as_ref().map(|x| (&x.score, x.seconds))),
        ("loss isolation", d.loss.as_ref().map(|x| (&x.score, x.seconds))),
    ]
    .into_iter()
    .filter_map(|(n, x)| x.map(|(sc, t)| (n, sc, t)))
    {
        let _ = writeln!(
            s,
            "  {name:<21} {:>6.3} {:>6.3} {:>9.3} {:>6.3} {:>6} {seconds:>8.1}",
            score.tpr,
            score.fpr,
            score.precision,
            score.f1,
            auroc(score.auroc)
        );
    }
    if let Some(ss) = &d.ss {
        let _ = writeln!(s, "  spectral signatures   in-class AUROC (target class) {}", auroc(ss.in_class_auroc));
    }
    if let Some(st) = &d.strip {
        let _ = writeln!(
            s,
            "  STRIP                 FAR at FRR 1 %: {:.1} %  AUROC {}  ({:.1} s)",
            100.0 * st.far_at_frr_1pct,
            auroc(st.auroc),
            st.seconds
        );
    }
    if let Some(o) = &d.occlusion {
        let _ = writeln!(
            s,
            "  occlusion             hottest pixel (row {}, col {}){}  ({:.1} s)",
            o.max_row,
            o.max_col,
            if o.hottest_on_trigger { " on the trigger" } else { " off the trigger" },
            o.seconds
        );
    }
}
