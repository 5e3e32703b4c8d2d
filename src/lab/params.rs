//! Parameters are declared once: each method's file lists its parameters (link key, doc line, default,
//! kind and range, display hint) in a `params!` table next to the code that uses them. The link codec,
//! validation, the CLI's flags, the page's controls and the key table of docs/links.md are all derived from
//! those tables (TensorFlow Playground's `PROPS`, taken one step further).

use std::fmt::Write as _;

/// How a parameter's value is written and which values are allowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A whole number in `min..=max`.
    Int { min: i128, max: i128 },
    /// A whole number in `min..=max`, or `all` (every image the data has).
    Size { min: i128, max: i128 },
    /// A real number between `min` and `max`; an open end excludes the bound itself.
    Float { min: f64, max: f64, min_open: bool, max_open: bool },
    /// One of a fixed list of names.
    Choice(&'static [Named]),
    /// One method of a registry (attacks).
    Method(Family),
    /// A comma list of methods of a registry (detectors, repairs), or `none`.
    Methods(Family),
    /// A comma list of names, each at most once; empty for none of them.
    Choices(&'static [Named]),
    /// A patch position: `br`, `bl`, `tr`, `tl`, `center` or `X,Y`.
    Position,
    /// An image: `noise` or base64url pixels (the CLI reads a raw file instead).
    Image,
    /// A drawing: base64url of the pixels changed on a blank image (the page's pixel editor).
    Drawing,
}

/// A registry of methods a parameter chooses from (attacks, detectors, repairs), in registry order. The
/// registry carries its own list, so this layer never names the layers that own the methods.
#[derive(Debug, Clone, Copy)]
pub struct Family(pub &'static [MethodInfo]);

impl PartialEq for Family {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

/// One allowed name of a `Kind::Choice`, with the words the page shows for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Named {
    pub value: &'static str,
    pub label: &'static str,
}

/// How the page shows a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// A number box.
    Number,
    /// A slider with the value beside it.
    Slider,
    /// A number box for a fraction, shown with its percentage.
    Percent,
    /// A drop-down list.
    Select,
    /// A free text box (positions, images).
    Text,
    /// One check box per method.
    Checkboxes,
}

/// Everything known about one parameter except how to reach it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamInfo {
    /// The link key (`rate`, `nc_steps`): spelled here and nowhere else.
    pub key: &'static str,
    /// The CLI's long flag without dashes (`poison-rate`); empty means the key with `-` for `_`.
    pub flag: &'static str,
    /// The page's label; empty means the key.
    pub label: &'static str,
    /// One line for the CLI's help, the page's tooltip and docs/links.md (the field's doc comment).
    pub doc: &'static str,
    pub kind: Kind,
    pub hint: Hint,
    /// The spec's JSON field when it is not the key (`poison_rate` for `rate`): messages name both.
    pub field: &'static str,
    /// Chooses what other parameters apply (dataset, attack, trigger family, detectors, repairs):
    /// links apply it before the others, and encode the others against its defaults.
    pub selects: bool,
}

/// A method in a registry: its link name, the words the page shows, and its parameters.
#[derive(Debug, Clone, Copy)]
pub struct MethodInfo {
    /// Link name (`nc`, `badnets`): also its JSON name.
    pub name: &'static str,
    /// The name a student reads.
    pub title: &'static str,
    /// One sentence on the method, with its paper.
    pub explain: &'static str,
    /// Every parameter the method may use.
    pub params: fn() -> Vec<&'static ParamInfo>,
}

/// Declares an integer parameter (`params!` tables use these builders).
pub const fn int(key: &'static str, min: i128, max: i128) -> ParamInfo {
    ParamInfo {
        key,
        flag: "",
        label: "",
        doc: "",
        kind: Kind::Int { min, max },
        hint: Hint::Number,
        field: "",
        selects: false,
    }
}

/// Declares a count of images: a whole number in `min..=max`, or `all`.
pub const fn size(key: &'static str, min: i128, max: i128) -> ParamInfo {
    let kind = Kind::Size { min, max };
    ParamInfo { key, flag: "", label: "", doc: "", kind, hint: Hint::Number, field: "", selects: false }
}

/// The word for "every image there is" (`train=all`).
pub const ALL_WORD: &str = "all";

/// Declares a real parameter in the closed range `[min, max]`.
pub const fn float(key: &'static str, min: f64, max: f64) -> ParamInfo {
    let kind = Kind::Float { min, max, min_open: false, max_open: false };
    ParamInfo { key, flag: "", label: "", doc: "", kind, hint: Hint::Number, field: "", selects: false }
}

/// Declares a choice among `names`.
pub const fn choice(key: &'static str, names: &'static [Named]) -> ParamInfo {
    ParamInfo {
        key,
        flag: "",
        label: "",
        doc: "",
        kind: Kind::Choice(names),
        hint: Hint::Select,
        field: "",
        selects: false,
    }
}

/// Declares a parameter of another kind.
pub const fn other(key: &'static str, kind: Kind, hint: Hint) -> ParamInfo {
    ParamInfo { key, flag: "", label: "", doc: "", kind, hint, field: "", selects: false }
}

impl ParamInfo {
    pub const fn flag(mut self, flag: &'static str) -> Self {
        self.flag = flag;
        self
    }
    pub const fn label(mut self, label: &'static str) -> Self {
        self.label = label;
        self
    }
    pub const fn doc(mut self, doc: &'static str) -> Self {
        self.doc = doc;
        self
    }
    pub const fn field(mut self, field: &'static str) -> Self {
        self.field = field;
        self
    }
    pub const fn selector(mut self) -> Self {
        self.selects = true;
        self
    }
    pub const fn hint(mut self, hint: Hint) -> Self {
        self.hint = hint;
        self
    }
    /// Excludes the lower bound of a `float` range.
    pub const fn open_min(mut self) -> Self {
        if let Kind::Float { min, max, max_open, .. } = self.kind {
            self.kind = Kind::Float { min, max, min_open: true, max_open };
        }
        self
    }
    /// Excludes the upper bound of a `float` range.
    pub const fn open_max(mut self) -> Self {
        if let Kind::Float { min, max, min_open, .. } = self.kind {
            self.kind = Kind::Float { min, max, min_open, max_open: true };
        }
        self
    }

    /// The CLI flag without its leading dashes.
    pub fn cli_flag(&self) -> String {
        if self.flag.is_empty() { self.key.replace('_', "-") } else { self.flag.to_string() }
    }

    /// The page's label.
    pub fn title(&self) -> &'static str {
        if self.label.is_empty() { self.key } else { self.label }
    }

    /// The doc line without the doc comment's leading space.
    pub fn doc_line(&self) -> &'static str {
        self.doc.trim()
    }

    /// The allowed values in words: `10 to 5000`, `(0, 1]`, `white, checker or random`.
    pub fn range_text(&self) -> String {
        self.kind.describe()
    }

    /// What messages call the parameter: the key, or the JSON field with the key beside it.
    fn named(&self, value: &str, rule: String) -> String {
        let field = self.field.rsplit('.').next().unwrap_or_default();
        if field.is_empty() || field == self.key {
            format!("{} {} {rule}", self.key, clip(value))
        } else {
            format!("{field} {} {rule} (link key {})", clip(value), self.key)
        }
    }

    /// Checks a value written in link form against the range; the message names the key and the range.
    pub fn check(&self, value: &str) -> Result<(), String> {
        match self.kind {
            Kind::Int { min, max } => {
                let ok = value.parse::<i128>().is_ok_and(|v| (min..=max).contains(&v));
                if !ok {
                    return Err(self.named(value, format!("must be between {min} and {max}")));
                }
            }
            Kind::Size { min, max } => {
                let ok = value == ALL_WORD || value.parse::<i128>().is_ok_and(|v| (min..=max).contains(&v));
                if !ok {
                    return Err(self.named(value, format!("must be between {min} and {max}, or {ALL_WORD}")));
                }
            }
            Kind::Float { min, max, min_open, max_open } => {
                let ok = value.parse::<f64>().is_ok_and(|v| {
                    v.is_finite()
                        && if min_open { v > min } else { v >= min }
                        && if max_open { v < max } else { v <= max }
                });
                if !ok {
                    let range = self.range_text();
                    let how = if range.starts_with(['(', '[']) { "in" } else { "between" };
                    let range = if how == "between" { range.replace(" to ", " and ") } else { range };
                    return Err(self.named(value, format!("must be {how} {range}")));
                }
            }
            Kind::Choice(names) => {
                if !names.iter().any(|n| n.value == value) {
                    return Err(self.unknown(value));
                }
            }
            Kind::Choices(names) => {
                let items: Vec<&str> = value.split(',').filter(|v| !v.is_empty()).collect();
                if let Some(bad) = items.iter().find(|v| !names.iter().any(|n| n.value == **v)) {
                    return Err(format!("unknown {} '{}' ({})", self.key, clip(bad), self.range_text()));
                }
                if let Some((_, twice)) = items.iter().enumerate().find(|(i, v)| items[..*i].contains(v)) {
                    return Err(format!("{} lists '{twice}' twice", self.key));
                }
            }
            Kind::Method(_) | Kind::Methods(_) | Kind::Position | Kind::Image | Kind::Drawing => {}
        }
        Ok(())
    }

    /// The message for a value that is not one of the allowed names.
    pub fn unknown(&self, value: &str) -> String {
        format!("unknown {} '{}' (one of {})", self.key, clip(value), self.range_text())
    }

    /// The message for a value of the wrong type, given the parser's own reason.
    pub fn unparsable(&self, value: &str, reason: String) -> String {
        match self.kind {
            Kind::Int { .. } | Kind::Float { .. } => {
                format!("link value '{}' for '{}' is not a valid number", clip(value), self.key)
            }
            Kind::Size { .. } => {
                format!("link value '{}' for '{}' is neither a whole number nor {ALL_WORD}", clip(value), self.key)
            }
            Kind::Choice(_) => self.unknown(value),
            Kind::Choices(_) => self.check(value).err().unwrap_or(reason),
            _ => reason,
        }
    }
}

impl Kind {
    /// The allowed values in words: `10 to 5000`, `(0, 1]`, `white, checker or random`.
    pub fn describe(&self) -> String {
        match *self {
            // Seeds take any u64: "0 or more" reads better than twenty digits.
            Kind::Int { min, max } if max >= i128::from(u64::MAX) => format!("{min} or more"),
            Kind::Int { min, max } => format!("{min} to {max}"),
            Kind::Size { min, max } => format!("{min} to {max}, or {ALL_WORD}"),
            Kind::Float { min, max, min_open, max_open } => {
                if !min_open && !max_open {
                    format!("{min} to {max}")
                } else {
                    format!("{}{min}, {max}{}", if min_open { "(" } else { "[" }, if max_open { ")" } else { "]" })
                }
            }
            Kind::Choice(names) => or_list(names.iter().map(|n| n.value)),
            Kind::Method(family) => or_list(family.names().into_iter()),
            Kind::Methods(family) => format!("a comma list of {}, or none", family.names().join(", ")),
            Kind::Choices(names) => format!("a comma list of {}", or_list(names.iter().map(|n| n.value))),
            Kind::Position => "br, bl, tr, tl, center or X,Y".into(),
            Kind::Image => "noise or base64url pixels".into(),
            Kind::Drawing => "base64url of the drawn pixels (the page's pixel editor writes it)".into(),
        }
    }
}

impl Family {
    /// The family's methods, in registry order.
    pub fn registry(self) -> &'static [MethodInfo] {
        self.0
    }

    /// The link names of the family's methods, in registry order.
    pub fn names(self) -> Vec<&'static str> {
        self.registry().iter().map(|m| m.name).collect()
    }

    /// The method named `name`.
    pub fn method(self, name: &str) -> Option<&'static MethodInfo> {
        self.registry().iter().find(|m| m.name == name)
    }
}

/// Chooses or drops one method of a spec section, keeping the parameters of one already chosen.
pub fn keep<T: Default>(slot: &mut Option<T>, on: bool) {
    *slot = if on { slot.take().or_else(|| Some(T::default())) } else { None };
}

/// Splits a comma list of method names (`none` or empty for none), refusing names not in `known`;
/// `what` names the list in the message ("detector").
pub fn method_list<'a>(names: &'a str, known: &[&str], what: &str) -> std::result::Result<Vec<&'a str>, String> {
    let names: Vec<&str> = names.split(',').map(str::trim).filter(|n| !n.is_empty() && *n != "none").collect();
    if let Some(bad) = names.iter().find(|n| !known.contains(n)) {
        return Err(format!("unknown {what} '{}' (one of {})", clip(bad), known.join(", ")));
    }
    Ok(names)
}

/// What every set of optional methods (the detectors, the repairs) derives from its registry list
/// `name: Type`: the link names, each method's words and parameters (`$kind` is the trait that
/// holds `TITLE` and `EXPLAIN`), which are chosen, all of them, and the chosen ones' parameters. The
/// spec struct itself (one `Option<Type>` field per name) and its `Default` are the caller's.
#[macro_export]
macro_rules! method_set {
    ($spec:ident, $kind:ident, $($name:ident: $ty:ty),+ $(,)?) => {
        impl $spec {
            /// Link names, in the order the methods run and appear in links and reports.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),+];
            /// Every method's words and parameters.
            pub const REGISTRY: &'static [$crate::lab::params::MethodInfo] = &[$($crate::lab::params::MethodInfo {
                name: stringify!($name),
                title: <$ty as $kind>::TITLE,
                explain: <$ty as $kind>::EXPLAIN,
                params: $crate::lab::params::table_params::<$ty>,
            }),+];

            /// Names of the chosen methods, in `NAMES` order.
            pub fn chosen(&self) -> Vec<&'static str> {
                let mut out = Vec::new();
                $(if self.$name.is_some() { out.push(stringify!($name)); })+
                out
            }

            /// Every method with its default parameters (registry tests, "run all" buttons).
            #[allow(clippy::needless_update)] // a set with fields besides its methods (repairs) keeps their defaults
            pub fn all() -> Self {
                Self { $($name: Some(<$ty>::default()),)+ ..Self::default() }
            }

            fn keep_only(&mut self, names: &[&str]) {
                $($crate::lab::params::keep(&mut self.$name, names.contains(&stringify!($name)));)+
            }

            /// The chosen methods' parameters, in `NAMES` order.
            fn chosen_params(&self) -> Vec<&dyn $crate::lab::params::Params> {
                let mut out: Vec<&dyn $crate::lab::params::Params> = Vec::new();
                $(if let Some(m) = &self.$name { out.push(m); })+
                out
            }

            fn chosen_params_mut(&mut self) -> Vec<&mut dyn $crate::lab::params::Params> {
                let mut out: Vec<&mut dyn $crate::lab::params::Params> = Vec::new();
                $(if let Some(m) = &mut self.$name { out.push(m); })+
                out
            }
        }
    };
}

fn or_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

/// Keeps echoed user input short in messages.
pub fn clip(s: &str) -> String {
    if s.chars().count() > 40 { s.chars().take(40).collect::<String>() + "…" } else { s.to_string() }
}

/// A value as written in a link, and read back from one.
pub trait LinkValue: Sized {
    fn to_link(&self) -> String;
    /// The value, or the reason it is not one.
    fn from_link(text: &str) -> Result<Self, String>;
}

macro_rules! link_value_by_display {
    ($($t:ty),*) => {$(
        impl LinkValue for $t {
            fn to_link(&self) -> String {
                self.to_string()
            }
            fn from_link(text: &str) -> Result<Self, String> {
                text.parse().map_err(|_| format!("'{}' is not a valid number", clip(text)))
            }
        }
    )*};
}
link_value_by_display!(u8, u32, u64, usize, f32, f64);

/// Gives a plain enum its link names, once: `named_enum!(PatchPattern { White = "white" / "white", … })`
/// (variant = link name / the page's words). The names' list is `PatchPattern::CHOICES`.
#[macro_export]
macro_rules! named_enum {
    ($name:ident { $($variant:ident = $value:literal / $label:literal),+ $(,)? }) => {
        impl $name {
            /// The link names and the page's words, in declaration order.
            pub const CHOICES: &'static [$crate::lab::params::Named] =
                &[$($crate::lab::params::Named { value: $value, label: $label }),+];
            /// The link name.
            pub fn name(self) -> &'static str {
                match self { $(Self::$variant => $value),+ }
            }
            /// The page's words for it.
            pub fn label(self) -> &'static str {
                match self { $(Self::$variant => $label),+ }
            }
            /// The value with link name `name`.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($value => Some(Self::$variant),)+ _ => None }
            }
        }
        impl $crate::lab::params::LinkValue for $name {
            fn to_link(&self) -> String {
                self.name().to_string()
            }
            fn from_link(text: &str) -> Result<Self, String> {
                Self::from_name(text).ok_or_else(|| format!("unknown name '{}'", $crate::lab::params::clip(text)))
            }
        }
    };
}

/// One parameter of `T`: what it is, and how to read and write it in link form.
pub struct Param<T: 'static> {
    pub info: ParamInfo,
    pub get: fn(&T) -> String,
    pub set: fn(&mut T, &str) -> Result<(), String>,
}

/// Something with parameters: a method's own struct (generated by `params!`) or a section that
/// holds others (the spec, an attack with its trigger). Object safe, so the codec, the CLI and the
/// page can walk any of them the same way.
pub trait Params {
    /// The parameters that apply now (a blend attack has no patch size), in link order.
    fn params(&self) -> Vec<&'static ParamInfo>;
    /// A parameter's value in link form, if `key` applies now.
    fn get(&self, key: &str) -> Option<String>;
    /// Sets a parameter from link form; `None` when `key` does not apply now.
    fn set(&mut self, key: &str, value: &str) -> Option<Result<(), String>>;
    /// Checks every value against its range, then any rule that ties several together.
    fn validate(&self) -> Result<(), String>;
}

/// The table behind a `params!` struct.
pub trait Table: Sized + 'static {
    const PARAMS: &'static [Param<Self>];
    /// Rules across parameters (an occlusion stride no wider than its patch).
    fn cross_check(&self) -> Result<(), String> {
        Ok(())
    }
    /// Whether parameter `key` applies with the others as they are (a drawn patch has no size);
    /// `Err` says why not.
    fn applies(&self, _key: &str) -> Result<(), &'static str> {
        Ok(())
    }
}

/// Walks a table: every `Table` is `Params`.
pub fn table_params<T: Table>() -> Vec<&'static ParamInfo> {
    T::PARAMS.iter().map(|p| &p.info).collect()
}

/// The parameters of a table that apply now.
pub fn table_params_now<T: Table>(t: &T) -> Vec<&'static ParamInfo> {
    T::PARAMS.iter().filter(|p| t.applies(p.info.key).is_ok()).map(|p| &p.info).collect()
}

pub fn table_get<T: Table>(t: &T, key: &str) -> Option<String> {
    T::PARAMS.iter().find(|p| p.info.key == key && t.applies(key).is_ok()).map(|p| (p.get)(t))
}

pub fn table_set<T: Table>(t: &mut T, key: &str, value: &str) -> Option<Result<(), String>> {
    let p = T::PARAMS.iter().find(|p| p.info.key == key)?;
    if let Err(why) = t.applies(key) {
        return Some(Err(format!("link key '{key}' does not apply here: {why}")));
    }
    Some((p.set)(t, value).map_err(|reason| p.info.unparsable(value, reason)))
}

pub fn table_validate<T: Table>(t: &T) -> Result<(), String> {
    for p in T::PARAMS.iter().filter(|p| t.applies(p.info.key).is_ok()) {
        p.info.check(&(p.get)(t))?;
    }
    t.cross_check()
}

/// Declares a parameter struct once: each field with its doc line, default and table entry.
///
/// ```ignore
/// params! {
///     #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
///     #[serde(default, deny_unknown_fields)]
///     pub struct Strip {
///         /// Overlays per input.
///         pub n: usize = 100, int("strip_n", 2, 500);
///     }
/// }
/// ```
/// generates the struct, its `Default`, its `Table` (and so `Params`). A field may carry `#[serde(..)]` after
/// its doc lines (e.g. to leave a new default out of older specs' JSON). A `cross_check` rule is an
/// optional `check(path)` after the fields; an optional `applies(path)` after it says which
/// parameters apply with the others' values.
#[macro_export]
macro_rules! params {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $(#[serde($($serde:tt)*)])*
                $fvis:vis $field:ident : $ty:ty = $default:expr, $info:expr;
            )*
        }
        $(check($check:path);)?
        $(applies($applies:path);)?
    ) => {
        $(#[$attr])*
        $vis struct $name {
            $( $(#[doc = $doc])* $(#[serde($($serde)*)])* $fvis $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $($field: $default),* }
            }
        }

        impl $crate::lab::params::Table for $name {
            const PARAMS: &'static [$crate::lab::params::Param<Self>] = &[$(
                $crate::lab::params::Param {
                    info: $info.doc(concat!($($doc),*)),
                    get: |s: &Self| $crate::lab::params::LinkValue::to_link(&s.$field),
                    set: |s: &mut Self, v: &str| {
                        s.$field = $crate::lab::params::LinkValue::from_link(v)?;
                        Ok(())
                    },
                }
            ),*];
            $(
                fn cross_check(&self) -> Result<(), String> {
                    $check(self)
                }
            )?
            $(
                fn applies(&self, key: &str) -> Result<(), &'static str> {
                    $applies(self, key)
                }
            )?
        }

        impl $crate::lab::params::Params for $name {
            fn params(&self) -> Vec<&'static $crate::lab::params::ParamInfo> {
                $crate::lab::params::table_params_now(self)
            }
            fn get(&self, key: &str) -> Option<String> {
                $crate::lab::params::table_get(self, key)
            }
            fn set(&mut self, key: &str, value: &str) -> Option<Result<(), String>> {
                $crate::lab::params::table_set(self, key, value)
            }
            fn validate(&self) -> Result<(), String> {
                $crate::lab::params::table_validate(self)
            }
        }
    };
}

/// A parameter reached through a field path of a section: `lens!(int("train", 10, 100), data.train_size)`.
#[macro_export]
macro_rules! lens {
    ($info:expr, $($path:ident).+) => {
        $crate::lab::params::Param {
            info: $info.field(stringify!($($path).+)),
            get: |s| $crate::lab::params::LinkValue::to_link(&s.$($path).+),
            set: |s, v| {
                s.$($path).+ = $crate::lab::params::LinkValue::from_link(v)?;
                Ok(())
            },
        }
    };
}

/// `Params` for a struct whose parameters are those of one field: `delegate_params!(Badnets, patch)`.
#[macro_export]
macro_rules! delegate_params {
    ($name:ty, $field:ident) => {
        impl $crate::lab::params::Params for $name {
            fn params(&self) -> Vec<&'static $crate::lab::params::ParamInfo> {
                $crate::lab::params::Params::params(&self.$field)
            }
            fn get(&self, key: &str) -> Option<String> {
                $crate::lab::params::Params::get(&self.$field, key)
            }
            fn set(&mut self, key: &str, value: &str) -> Option<Result<(), String>> {
                $crate::lab::params::Params::set(&mut self.$field, key, value)
            }
            fn validate(&self) -> Result<(), String> {
                $crate::lab::params::Params::validate(&self.$field)
            }
        }
    };
}

/// One row per parameter for the key tables (docs/links.md, `backdoor-lab keys`): key, flag, doc line,
/// allowed values, default.
pub fn key_rows(params: &[&ParamInfo], default_of: impl Fn(&ParamInfo) -> String) -> Vec<[String; 5]> {
    params
        .iter()
        .map(|p| {
            [p.key.to_string(), format!("--{}", p.cli_flag()), p.doc_line().to_string(), p.range_text(), default_of(p)]
        })
        .collect()
}

/// The table of link keys in docs/links.md, from the tables: `backdoor-lab keys --markdown` prints it.
pub fn markdown_table(params: &[&ParamInfo], default_of: impl Fn(&ParamInfo) -> String) -> String {
    let mut out = String::from("| key | CLI flag | meaning | allowed | default |\n|---|---|---|---|---|\n");
    for [key, flag, doc, range, default] in key_rows(params, default_of) {
        let cell = |t: &str| t.replace('|', "\\|");
        let _ = writeln!(out, "| `{key}` | `{flag}` | {} | {} | {default} |", cell(&doc), cell(&range));
    }
    out
}
