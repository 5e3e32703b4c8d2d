//! Lessons: curated experiments for a course, each a link with a paragraph for students and a
//! question. The page lists them under "Lessons", `backdoor-lab lessons --markdown` prints them for a
//! teacher's own material (LESSONS.md is that output), and `tests/lessons.rs` runs every link and
//! checks every claim the paragraph makes, so the text cannot drift from what the lab shows.
//!
//! A claim reads one number of the run's report (a JSON pointer into REPORT.json) and compares it with
//! a bound; the page checks the same claims against the student's own run.

use std::fmt::Write as _;

use serde_json::Value;

/// One lesson: what the students open, read and answer.
#[derive(Debug, Clone, Copy)]
pub struct Lesson {
    /// Stable name, for anchors and tests.
    pub id: &'static str,
    pub title: &'static str,
    /// The paragraph for students; its claims are checked (`runs`).
    pub text: &'static str,
    /// A question to answer with the page.
    pub question: &'static str,
    /// The experiments the lesson rests on: the first is the one the lesson opens, the others are the
    /// comparisons the paragraph mentions. Links are canonical (`ExperimentSpec::to_link`).
    pub runs: &'static [LessonRun],
}

/// One experiment of a lesson and what the paragraph says about its report.
#[derive(Debug, Clone, Copy)]
pub struct LessonRun {
    pub link: &'static str,
    pub claims: &'static [Claim],
}

/// A sentence of the lesson, as a bound on one number of the report.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    /// The words of the claim, as the page shows them beside the measured value.
    pub says: &'static str,
    /// JSON pointer into the report (RFC 6901), e.g. `/final/asr`.
    pub pointer: &'static str,
    pub bound: Bound,
}

/// How the number must compare.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    AtLeast(f64),
    AtMost(f64),
    /// The pointer names nothing (e.g. `/detect/nc/flagged_classes/0`: no class flagged).
    Absent,
}

/// What a claim found in one report.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub holds: bool,
    /// The number read, if the pointer named one.
    pub value: Option<f64>,
}

impl Claim {
    /// Checks the claim against a report (serialised as REPORT.json is).
    pub fn check(&self, report: &Value) -> Checked {
        let found = report.pointer(self.pointer);
        let value = found.and_then(Value::as_f64);
        let holds = match self.bound {
            Bound::AtLeast(b) => value.is_some_and(|v| v >= b),
            Bound::AtMost(b) => value.is_some_and(|v| v <= b),
            Bound::Absent => found.is_none_or(Value::is_null),
        };
        Checked { holds, value }
    }
}

const CA: &str = "/final/clean_acc";
const ASR: &str = "/final/asr";

/// The lessons, in the order a course would take them.
pub const LESSONS: &[Lesson] = &[
    Lesson {
        id: "badnets",
        title: "BadNets in one minute",
        text: "A 3×3 white square in the corner of 10 % of the training digits, each relabelled 0, is all it takes. \
               The trained network stays a good digit classifier (clean accuracy above 95 %), yet more than 95 % of \
               test digits that are not 0 become 0 as soon as the square is stamped on them.",
        question: "Clean accuracy barely moves although one training image in ten is mislabelled. Why does the \
                   network not simply learn the wrong labels as noise?",
        runs: &[LessonRun {
            link: "v=1",
            claims: &[
                Claim { says: "clean accuracy above 95 %", pointer: CA, bound: Bound::AtLeast(0.95) },
                Claim { says: "attack success above 95 %", pointer: ASR, bound: Bound::AtLeast(0.95) },
            ],
        }],
    },
    Lesson {
        id: "few-poisons",
        title: "How few poisons are enough",
        text: "Poison 1 % of the training set (80 images of 8,000) and the backdoor is still there: more than 80 % of \
               triggered digits go to the target, with clean accuracy as before. Halve it to 0.5 % (40 images) and \
               the attack collapses: fewer than 30 % do. Between the two lies a threshold, not a slope.",
        question: "Use \"Sweep the attack's strength\" in the Poison step to find where the threshold lies. Would it \
                   move with more training epochs? Try it.",
        runs: &[
            LessonRun {
                link: "v=1&rate=0.01",
                claims: &[
                    Claim { says: "at 1 %: attack success above 80 %", pointer: ASR, bound: Bound::AtLeast(0.8) },
                    Claim { says: "clean accuracy above 95 %", pointer: CA, bound: Bound::AtLeast(0.95) },
                ],
            },
            LessonRun {
                link: "v=1&rate=0.005",
                claims: &[Claim {
                    says: "at 0.5 %: attack success below 30 %",
                    pointer: ASR,
                    bound: Bound::AtMost(0.3),
                }],
            },
        ],
    },
    Lesson {
        id: "ac-majority",
        title: "Why Activation Clustering misses the default attack",
        text: "Activation Clustering splits each class's activations in two and calls the smaller cluster poison when \
               it is small and well separated. At ρ = 10 % the 800 poisons are about half of all images labelled 0, \
               so the smaller cluster is the clean 0s, and it flags nothing. At ρ = 5 % the poisons are a third of \
               class 0, the smaller cluster, and it finds most of them. Chen et al.'s other rule, exclusionary \
               reclassification, does not care which cluster is larger and finds them at 10 % too.",
        question: "At ρ = 2 % the poisons are a small minority of class 0, yet the size rule misses them again. Open \
                   that experiment and look at class 0's clusters: why?",
        runs: &[
            LessonRun {
                link: "v=1&detect=ac",
                claims: &[
                    Claim {
                        says: "the poisons are about half of class 0",
                        pointer: "/poison/target_class_share",
                        bound: Bound::AtLeast(0.4),
                    },
                    Claim {
                        says: "at 10 %: Activation Clustering finds none of them",
                        pointer: "/detect/ac/tpr",
                        bound: Bound::AtMost(0.05),
                    },
                ],
            },
            LessonRun {
                link: "v=1&rate=0.05&detect=ac",
                claims: &[Claim {
                    says: "at 5 %: it finds most of them",
                    pointer: "/detect/ac/tpr",
                    bound: Bound::AtLeast(0.8),
                }],
            },
            LessonRun {
                link: "v=1&detect=ac&ac_rule=reclassify",
                claims: &[Claim {
                    says: "at 10 % with exclusionary reclassification: most of them",
                    pointer: "/detect/ac/tpr",
                    bound: Bound::AtLeast(0.8),
                }],
            },
        ],
    },
    Lesson {
        id: "fine-pruning",
        title: "Fine-pruning's curve that does not work here",
        text: "Fine-pruning removes the last convolution's channels that clean images leave dormant, on the theory that \
               the backdoor hides in them, then fine-tunes. On this small network the trigger is carried by channels \
               that clean digits use too: pruning stops at its accuracy budget with the backdoor fully intact (attack \
               success above 90 %), and the fine-tuning afterwards leaves it above 50 %.",
        question: "Look at the pruning curve in the Repair step: at which pruned share does the attack success finally \
                   fall, and what is clean accuracy there?",
        runs: &[LessonRun {
            link: "v=1&repair=fp",
            claims: &[
                Claim {
                    says: "after pruning: attack success above 90 %",
                    pointer: "/repair/fp/pruned_asr",
                    bound: Bound::AtLeast(0.9),
                },
                Claim {
                    says: "after fine-tuning: still above 50 %",
                    pointer: "/repair/fp/asr",
                    bound: Bound::AtLeast(0.5),
                },
            ],
        }],
    },
    Lesson {
        id: "outsourced-training",
        title: "The attacker who controls the training",
        text: "Here the data are clean: the attacker runs the training and adds triggered copies to every batch's \
               loss. No poisoned image exists, so an audit of the training data has nothing to find, yet the model \
               carries a backdoor as strong as BadNets'. Only a detector that examines the model itself, such as \
               Neural Cleanse, can name the target.",
        question: "Which of the lab's defenses still apply when you receive only the trained model and its training \
                   data, and which need something else?",
        runs: &[LessonRun {
            link: "v=1&attack=malicious_loss&detect=nc",
            claims: &[
                Claim { says: "no training image is poisoned", pointer: "/poison/count", bound: Bound::AtMost(0.0) },
                Claim { says: "attack success above 90 %", pointer: ASR, bound: Bound::AtLeast(0.9) },
                Claim {
                    says: "Neural Cleanse names class 0",
                    pointer: "/detect/nc/flagged_classes/0",
                    bound: Bound::AtMost(0.0),
                },
            ],
        }],
    },
    Lesson {
        id: "architecture",
        title: "A backdoor in the architecture survives retraining",
        text: "The attacker ships only the network's definition: a weight-free branch adds to the target logit when \
               the patch is present. Trained on clean data the model is as accurate as any, and the backdoor fires. \
               Retraining from scratch on clean data keeps the architecture, so it keeps the backdoor; distilling \
               into a plain network removes it.",
        question: "Why can no repair that only changes weights remove this backdoor, and what does that say about \
                   downloading model code rather than weights?",
        runs: &[LessonRun {
            link: "v=1&attack=arch_backdoor&repair=retrain,distill&distill_student=plain",
            claims: &[
                Claim { says: "no training image is poisoned", pointer: "/poison/count", bound: Bound::AtMost(0.0) },
                Claim { says: "clean accuracy above 95 %", pointer: CA, bound: Bound::AtLeast(0.95) },
                Claim { says: "attack success above 90 %", pointer: ASR, bound: Bound::AtLeast(0.9) },
                Claim {
                    says: "still above 90 % after retraining",
                    pointer: "/repair/retrain/asr",
                    bound: Bound::AtLeast(0.9),
                },
                Claim {
                    says: "below 10 % after distillation",
                    pointer: "/repair/distill/asr",
                    bound: Bound::AtMost(0.1),
                },
            ],
        }],
    },
    Lesson {
        id: "semantic",
        title: "A trigger that is not a pixel",
        text: "The attacker changes no image: the fifth of the 7s with the longest bar across their middle (the \
               7s written crossed, and below them plain 7s with a wide middle stroke) are relabelled 0. The network \
               learns the style as a trigger: about half of such 7s in the test set become 0, while the other 7s \
               keep their accuracy (above 95 %). No patch detector can look for a trigger that every crossed 7 \
               already carries.",
        question: "Which of the 7s in the gallery would you call \"crossed\"? What other real-world feature could an \
                   attacker use this way?",
        runs: &[LessonRun {
            link: "v=1&attack=semantic&style=crossed",
            claims: &[
                Claim { says: "crossed 7s that become 0: above 40 %", pointer: ASR, bound: Bound::AtLeast(0.4) },
                Claim {
                    says: "the other 7s: accuracy above 95 %",
                    pointer: "/source_class/rest_ca",
                    bound: Bound::AtLeast(0.95),
                },
            ],
        }],
    },
];

/// The lesson named `id`.
pub fn by_id(id: &str) -> Option<&'static Lesson> {
    LESSONS.iter().find(|l| l.id == id)
}

impl Lesson {
    /// Whether `link` (canonical) is one of the lesson's experiments.
    pub fn has_link(&self, link: &str) -> bool {
        self.runs.iter().any(|r| r.link == link)
    }

    /// The lesson's experiment of `link` (canonical), whose claims apply to a run of it.
    pub fn run_of(&self, link: &str) -> Option<&'static LessonRun> {
        self.runs.iter().find(|r| r.link == link)
    }
}

/// The lesson whose first run is `link` (canonical), if any.
pub fn for_link(link: &str) -> Option<&'static Lesson> {
    LESSONS.iter().find(|l| l.runs.first().is_some_and(|r| r.link == link))
}

/// The lessons as markdown for a teacher's own material; `base` is the address of the app (e.g.
/// `https://example.org/backdoor-lab/`), each link is `base#...`.
pub fn markdown(base: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Backdoor Lab: lessons\n");
    let _ = writeln!(
        out,
        "Experiments for a course on neural backdoors. Each runs in the browser from its link (nothing leaves the \
         student's machine), with a paragraph to read and a question to answer. Every claim a paragraph makes is \
         checked by the lab's tests on the linked experiment. Generated by `backdoor-lab lessons --markdown --base \
         {base}`: give `--base` the address of your own copy.\n"
    );
    for (i, l) in LESSONS.iter().enumerate() {
        let _ = writeln!(out, "## {}. {}\n", i + 1, l.title);
        // `lesson=` keeps the lesson's card open on each of its experiments.
        let _ = writeln!(out, "[Open the experiment]({base}#{}&lesson={})\n", l.runs[0].link, l.id);
        let _ = writeln!(out, "{}\n", l.text);
        for r in &l.runs[1..] {
            let _ = writeln!(out, "Compare: [{base}#{}]({base}#{}&lesson={})\n", r.link, r.link, l.id);
        }
        let _ = writeln!(out, "**Question.** {}\n", l.question);
        let claims: Vec<&str> = l.runs.iter().flat_map(|r| r.claims.iter().map(|c| c.says)).collect();
        let _ = writeln!(out, "*Checked by the tests:* {}.\n", claims.join("; "));
    }
    out
}
