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
    s
}
