//! The results table printed at the end of a run.

use std::fmt::Write as _;

use backdoor_lab::lab::run::Report;

pub fn render(r: &Report) -> String {
    let m = &r.final_metrics;
    let pct = |x: f64| format!("{:5.1} %", 100.0 * x);
    let mut s = String::new();
    let method = &r.spec.attack.method;
    let strength = match (method.loss_weight(), method.branch()) {
        (Some(lambda), _) => format!("λ = {lambda}"),
        (None, Some(branch)) => format!("logit boost {}", branch.gain),
        (None, None) => format!("ρ = {}", r.spec.attack.poison_rate),
    };
    if let Some(scanned) = &r.scanned {
        let _ = writeln!(
            s,
            "\n  scanned {} ({}) as {} on {}; ASR measured with the {} trigger and target {} given",
            scanned.file,
            scanned.format,
            r.spec.model.name(),
            r.spec.data.dataset.name(),
            r.spec.attack.method.info().title,
            r.spec.attack.target_label
        );
    } else {
        let _ = writeln!(
            s,
            "\n  {} · {} · {} · {strength} · target {}",
            r.spec.data.dataset.name(),
            r.spec.attack.method.name(),
            r.spec.model.name(),
            r.spec.attack.target_label
        );
    }
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
    if r.scanned.is_some() {
        let _ = writeln!(
            s,
            "  the defender's {} training samples are clean (the lab's own split)",
            r.spec.data.train_text()
        );
    } else if method.loss_weight().is_some() {
        let _ = writeln!(s, "  poisoned 0 training samples: the attacker changed the training loss, not the data");
    } else if method.branch().is_some() {
        let _ = writeln!(s, "  poisoned 0 training samples: the attacker shipped the architecture, not the data");
    } else {
        let _ = writeln!(
            s,
            "  poisoned {} of {} training samples ({:.0} % of the target class)",
            r.poison.count,
            r.spec.data.train_text(),
            100.0 * r.poison.target_class_share
        );
    }
    if r.scanned.is_some() {
        let _ = writeln!(s, "  {}: total {:.1} s", r.device, r.seconds.total);
    } else {
        let _ = writeln!(
            s,
            "  {}: train {:.1} s ({:.0} samples/s), total {:.1} s",
            r.device, r.seconds.train, r.train_samples_per_second, r.seconds.total
        );
    }
    if let Some(p) = &r.privacy {
        let _ = writeln!(
            s,
            "  DP-SGD σ = {}, C = {}: (ε = {:.2}, δ = {:.2e}) per sample over {} steps at q = {:.4}; \
             {} poisons are a group, for which the guarantee is far weaker",
            r.spec.train.dp_sigma, r.spec.train.dp_clip, p.epsilon, p.delta, p.steps, p.sample_rate, r.poison.count
        );
    }
    detection(&mut s, r);
    repairs(&mut s, r);
    transfer(&mut s, r);
    s
}

/// The transfer section: CA and ASR of each freeze mode after every fine-tuning epoch.
fn transfer(s: &mut String, r: &Report) {
    let Some(t) = &r.transfer else { return };
    let _ = writeln!(
        s,
        "\n  transfer: the victim fine-tunes on {} clean images the base never saw ({:.1} s)",
        t.clean_samples, t.seconds
    );
    let m = &r.final_metrics;
    let _ = writeln!(s, "  {:<14} {:>10}  CA/ASR % after each epoch (epoch 0: the base)", "frozen", "trained");
    for run in &t.runs {
        let mut cells = vec![format!("{:.0}/{:.0}", 100.0 * m.clean_acc, 100.0 * m.asr)];
        cells.extend(run.epochs.iter().map(|e| format!("{:.0}/{:.0}", 100.0 * e.clean_acc, 100.0 * e.asr)));
        let _ = writeln!(s, "  {:<14} {:>10}  {}", run.freeze.name(), run.trainable_params, cells.join(" "));
    }
}

/// The repair section: the suspect model, then each repair's CA, ASR, RA, DER and cost.
fn repairs(s: &mut String, r: &Report) {
    let rep = &r.repair;
    if rep.is_empty() {
        return;
    }
    let _ =
        writeln!(s, "\n  repairs ({:.1} s; defender holds {} clean training samples)", rep.seconds, rep.defender_clean);
    let _ = writeln!(s, "  {:<14} {:>7} {:>7} {:>7} {:>6} {:>8}", "", "CA", "ASR", "RA", "DER", "seconds");
    let b = &rep.before;
    let pct = |x: f64| format!("{:5.1} %", 100.0 * x);
    let _ = writeln!(
        s,
        "  {:<14} {:>7} {:>7} {:>7} {:>6} {:>8}",
        "before",
        pct(b.clean_acc),
        pct(b.asr),
        pct(b.robust_acc),
        "",
        ""
    );
    for row in rep.rows() {
        let _ = writeln!(
            s,
            "  {:<14} {:>7} {:>7} {:>7} {:>6.3} {:>8.1}",
            row.name,
            pct(row.clean_acc),
            pct(row.asr),
            pct(row.robust_acc),
            row.der,
            row.seconds
        );
    }
    // What each repair did, from its summary (registry order).
    for row in rep.rows() {
        let _ = writeln!(s, "  {}: {}", row.name, row.detail);
    }
    if let Some(fp) = &rep.fp {
        let curve: Vec<String> = fp
            .detail
            .curve
            .iter()
            .map(|p| format!("{:.0}%:{:.0}/{:.0}", 100.0 * p.fraction, 100.0 * p.clean_acc, 100.0 * p.asr))
            .collect();
        let _ = writeln!(s, "  fine-pruning curve (pruned: CA/ASR %) {}", curve.join(" "));
    }
}

/// The detection section: every detector that ran, from its summary (registry order): its title, time
/// and verdict, then its figures.
fn detection(s: &mut String, r: &Report) {
    let d = &r.detect;
    if d.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n  detection ({:.1} s)", d.seconds);
    for (_, title, summary) in d.summaries(&r.about()) {
        let _ = writeln!(s, "  {title} ({:.1} s): {}", summary.seconds, summary.verdict);
        let figures: Vec<String> = summary.figures.iter().map(|(what, value)| format!("{what} {value}")).collect();
        if !figures.is_empty() {
            let _ = writeln!(s, "      {}", figures.join(" · "));
        }
    }
}
