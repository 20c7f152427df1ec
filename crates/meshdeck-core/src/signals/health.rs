//! Traffic health with Kiali's tolerances (`health_config.rate`): per protocol, the share of
//! requests whose code matches a tolerance's regex is compared with its `degraded` and `failure`
//! percentages (`value ≥ failure` → failure, else `value ≥ degraded` → degraded, evaluated only
//! when the value is above 0). Rules are scoped by namespace, kind and name regexes (the first
//! rule that matches wins); an object's `health.kiali.io/rate` annotation replaces them.

use super::Traffic;
use crate::model::health::Level;
use regex::Regex;
use serde::{Deserialize, Serialize};

/// One tolerance as written in the settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToleranceSpec {
    pub code: String,
    #[serde(default = "any")]
    pub protocol: String,
    #[serde(default = "any")]
    pub direction: String,
    pub degraded: f64,
    pub failure: f64,
}

/// One rule as written in the settings (`signals.rate:` is a list of these).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    #[serde(default = "any")]
    pub namespace: String,
    #[serde(default = "any")]
    pub kind: String,
    #[serde(default = "any")]
    pub name: String,
    pub tolerance: Vec<ToleranceSpec>,
}

fn any() -> String {
    ".*".into()
}

#[derive(Debug, Clone)]
pub struct Tolerance {
    code: Regex,
    protocol: Regex,
    direction: Regex,
    degraded: f64,
    failure: f64,
    /// What the reason calls the codes: `5xx`, `4xx`, `gRPC errors`, `no response`.
    label: String,
}

#[derive(Debug, Clone)]
struct Rule {
    namespace: Regex,
    kind: Regex,
    name: Regex,
    tolerance: Vec<Tolerance>,
}

/// The rules in force: the settings', else Kiali's defaults.
#[derive(Debug, Clone)]
pub struct Tolerances {
    rules: Vec<Rule>,
}

/// A subject's traffic health: its level and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrafficHealth {
    pub level: Level,
    /// `5xx 12.4 % over 1m ≥ 10 %`; None when ok.
    pub reason: Option<String>,
}

fn anchored(re: &str, at: &str) -> Result<Regex, String> {
    // Kiali matches the whole value
    Regex::new(&format!("^(?:{re})$")).map_err(|e| format!("{at}: {e}"))
}

fn label_of(code: &str, protocol: &str) -> String {
    match (code, protocol) {
        (r"^5\d\d$" | "5XX" | "5xx", _) => "5xx".into(),
        (r"^4\d\d$" | "4XX" | "4xx", _) => "4xx".into(),
        (r"^[1-9]$|^1[0-6]$", _) => "gRPC errors".into(),
        ("^-$" | "-", _) => "no response".into(),
        (c, _) => format!("codes {c}"),
    }
}

impl Tolerance {
    fn new(spec: &ToleranceSpec, at: &str) -> Result<Tolerance, String> {
        if !(0.0..=100.0).contains(&spec.degraded) || !(0.0..=100.0).contains(&spec.failure) {
            return Err(format!(
                "{at}: degraded and failure are percentages (0 to 100)"
            ));
        }
        if spec.failure < spec.degraded {
            return Err(format!(
                "{at}: failure ({}) is below degraded ({})",
                spec.failure, spec.degraded
            ));
        }
        Ok(Tolerance {
            code: anchored(&spec.code, &format!("{at}.code"))?,
            protocol: anchored(&spec.protocol, &format!("{at}.protocol"))?,
            direction: anchored(&spec.direction, &format!("{at}.direction"))?,
            degraded: spec.degraded,
            failure: spec.failure,
            label: label_of(&spec.code, &spec.protocol),
        })
    }
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances::new(&default_rules()).unwrap_or(Tolerances { rules: Vec::new() })
    }
}

/// Kiali's default rule.
pub fn default_rules() -> Vec<RuleSpec> {
    let t = |code: &str, protocol: &str, degraded: f64, failure: f64| ToleranceSpec {
        code: code.into(),
        protocol: protocol.into(),
        direction: any(),
        degraded,
        failure,
    };
    vec![RuleSpec {
        namespace: any(),
        kind: any(),
        name: any(),
        tolerance: vec![
            t(r"^5\d\d$", "http", 0.0, 10.0),
            t(r"^4\d\d$", "http", 10.0, 20.0),
            t(r"^[1-9]$|^1[0-6]$", "grpc", 0.0, 10.0),
            t("^-$", "http", 0.0, 10.0),
        ],
    }]
}

/// Parse a `health.kiali.io/rate` annotation: `code,degraded,failure,protocol,direction`
/// tolerances separated by `;` (`4XX,30,40,http,inbound;5XX,5,10,http,.*`). In a code, `X`
/// stands for any digit.
pub fn parse_annotation(text: &str) -> Result<Vec<Tolerance>, String> {
    let mut out = Vec::new();
    for (i, part) in text.split(';').map(str::trim).enumerate() {
        if part.is_empty() {
            continue;
        }
        let at = format!("{}[{i}]", super::RATE_ANNOTATION);
        let f: Vec<&str> = part.split(',').map(str::trim).collect();
        if f.len() < 3 {
            return Err(format!(
                "{at}: {part:?} is not code,degraded,failure[,protocol[,direction]]"
            ));
        }
        let num = |s: &str, what: &str| {
            s.parse::<f64>()
                .map_err(|_| format!("{at}: {what} {s:?} is not a number"))
        };
        let spec = ToleranceSpec {
            code: f[0].replace(['X', 'x'], r"\d"),
            degraded: num(f[1], "degraded")?,
            failure: num(f[2], "failure")?,
            protocol: f.get(3).map_or_else(any, |s| s.to_string()),
            direction: f.get(4).map_or_else(any, |s| s.to_string()),
        };
        let mut t = Tolerance::new(&spec, &at)?;
        t.label = label_of(f[0], &spec.protocol);
        out.push(t);
    }
    Ok(out)
}

impl Tolerances {
    /// Build from the settings' rules; an error names the rule and field.
    pub fn new(rules: &[RuleSpec]) -> Result<Tolerances, String> {
        let mut out = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            let at = format!("signals.rate[{i}]");
            let tolerance = r
                .tolerance
                .iter()
                .enumerate()
                .map(|(j, t)| Tolerance::new(t, &format!("{at}.tolerance[{j}]")))
                .collect::<Result<Vec<_>, _>>()?;
            out.push(Rule {
                namespace: anchored(&r.namespace, &format!("{at}.namespace"))?,
                kind: anchored(&r.kind, &format!("{at}.kind"))?,
                name: anchored(&r.name, &format!("{at}.name"))?,
                tolerance,
            });
        }
        Ok(Tolerances { rules: out })
    }

    /// The traffic health of one subject (`kind`: `service`, `workload`). `annotation` is the
    /// object's `health.kiali.io/rate`, if any; a malformed one is reported as a warning and the
    /// rules apply. None without requests: no traffic is no verdict.
    pub fn evaluate(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        annotation: Option<&str>,
        traffic: &Traffic,
        window: &str,
    ) -> Option<TrafficHealth> {
        if traffic.rps <= 0.0 {
            return None;
        }
        let parsed;
        let mut note = None;
        let tolerances: &[Tolerance] = match annotation.map(parse_annotation) {
            Some(Ok(t)) => {
                parsed = t;
                &parsed
            }
            Some(Err(e)) => {
                note = Some(e);
                self.rule_for(kind, namespace, name)
            }
            None => self.rule_for(kind, namespace, name),
        };
        let http_total: f64 = traffic.http.values().sum();
        let grpc_total: f64 = traffic.grpc.values().sum();
        let mut worst = TrafficHealth {
            level: Level::Ok,
            reason: None,
        };
        for t in tolerances {
            if !t.direction.is_match("inbound") {
                continue;
            }
            for (protocol, codes, total) in [
                ("http", &traffic.http, http_total),
                ("grpc", &traffic.grpc, grpc_total),
            ] {
                if total <= 0.0 || !t.protocol.is_match(protocol) {
                    continue;
                }
                let matched: f64 = codes
                    .iter()
                    .filter(|(c, _)| t.code.is_match(c))
                    .map(|(_, r)| r)
                    .sum();
                let pct = 100.0 * matched / total;
                if pct <= 0.0 {
                    continue;
                }
                let (level, limit) = if pct >= t.failure {
                    (Level::Failure, t.failure)
                } else if pct >= t.degraded {
                    (Level::Degraded, t.degraded)
                } else {
                    continue;
                };
                if level > worst.level {
                    let cmp = if limit == 0.0 { ">" } else { "≥" };
                    worst = TrafficHealth {
                        level,
                        reason: Some(format!(
                            "{} {pct:.1} % over {window} {cmp} {limit} %",
                            t.label
                        )),
                    };
                }
            }
        }
        if let Some(e) = note
            && worst.level < Level::Warning
        {
            worst = TrafficHealth {
                level: Level::Warning,
                reason: Some(e),
            };
        }
        Some(worst)
    }

    fn rule_for(&self, kind: &str, namespace: &str, name: &str) -> &[Tolerance] {
        self.rules
            .iter()
            .find(|r| {
                r.namespace.is_match(namespace) && r.kind.is_match(kind) && r.name.is_match(name)
            })
            .map(|r| r.tolerance.as_slice())
            .unwrap_or(&[])
    }
}

impl TrafficHealth {
    /// An object's health with this traffic health folded in: the worse level, and the
    /// traffic's reason among the reasons (most severe first).
    pub fn fold_into(&self, h: &crate::model::Health) -> crate::model::Health {
        let mut out = h.clone();
        if let Some(r) = &self.reason {
            if self.level > out.level {
                out.level = self.level;
                out.reasons.insert(0, r.clone());
            } else {
                out.reasons.push(r.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic(codes: &[(&str, f64)]) -> Traffic {
        let mut t = Traffic::default();
        for (c, r) in codes {
            t.add("http", c, "", *r);
        }
        t
    }

    fn eval(t: &Tolerances, tr: &Traffic, ann: Option<&str>) -> (Level, Option<String>) {
        let h = t
            .evaluate("service", "bookstore", "reviews", ann, tr, "1m")
            .expect("has traffic");
        (h.level, h.reason)
    }

    #[test]
    fn kiali_defaults() {
        let t = Tolerances::default();
        assert_eq!(
            eval(&t, &traffic(&[("200", 100.0)]), None),
            (Level::Ok, None)
        );
        // any 5xx is degraded; 10 % and more is failure
        assert_eq!(
            eval(&t, &traffic(&[("200", 99.0), ("503", 1.0)]), None),
            (Level::Degraded, Some("5xx 1.0 % over 1m > 0 %".into()))
        );
        assert_eq!(
            eval(&t, &traffic(&[("200", 87.6), ("500", 12.4)]), None),
            (Level::Failure, Some("5xx 12.4 % over 1m ≥ 10 %".into()))
        );
        // 4xx: 10 % degraded, 20 % failure; below 10 % is fine
        assert_eq!(
            eval(&t, &traffic(&[("200", 95.0), ("404", 5.0)]), None).0,
            Level::Ok
        );
        assert_eq!(
            eval(&t, &traffic(&[("200", 85.0), ("404", 15.0)]), None),
            (Level::Degraded, Some("4xx 15.0 % over 1m ≥ 10 %".into()))
        );
        assert_eq!(
            eval(&t, &traffic(&[("200", 75.0), ("401", 25.0)]), None).0,
            Level::Failure
        );
        // gRPC status 14 (UNAVAILABLE) is an error, 0 is not
        let mut g = Traffic::default();
        g.add("grpc", "200", "0", 95.0);
        g.add("grpc", "200", "14", 5.0);
        assert_eq!(
            eval(&t, &g, None),
            (
                Level::Degraded,
                Some("gRPC errors 5.0 % over 1m > 0 %".into())
            )
        );
        // no response
        assert_eq!(
            eval(&t, &traffic(&[("200", 80.0), ("0", 20.0)]), None).0,
            Level::Failure
        );
        // no traffic: no verdict
        assert!(
            t.evaluate("service", "a", "b", None, &Traffic::default(), "1m")
                .is_none()
        );
    }

    #[test]
    fn the_worst_tolerance_wins() {
        let t = Tolerances::default();
        let (l, r) = eval(
            &t,
            &traffic(&[("200", 70.0), ("404", 15.0), ("503", 15.0)]),
            None,
        );
        assert_eq!(l, Level::Failure);
        assert_eq!(r.as_deref(), Some("5xx 15.0 % over 1m ≥ 10 %"));
    }

    #[test]
    fn scoped_rules_and_the_annotation() {
        let rules = vec![
            RuleSpec {
                namespace: "legacy".into(),
                kind: ".*".into(),
                name: ".*".into(),
                tolerance: vec![ToleranceSpec {
                    code: r"^5\d\d$".into(),
                    protocol: "http".into(),
                    direction: ".*".into(),
                    degraded: 20.0,
                    failure: 50.0,
                }],
            },
            default_rules().remove(0),
        ];
        let t = Tolerances::new(&rules).expect("rules");
        let tr = traffic(&[("200", 70.0), ("503", 30.0)]);
        let h = t
            .evaluate("service", "legacy", "billing", None, &tr, "1m")
            .expect("traffic");
        assert_eq!(h.level, Level::Degraded);
        // another namespace: the default rule
        assert_eq!(eval(&t, &tr, None).0, Level::Failure);
        // the annotation replaces the rules: 404 up to 40 % tolerated
        let tr = traffic(&[("200", 70.0), ("404", 30.0)]);
        assert_eq!(eval(&t, &tr, Some("4XX,35,40,http,inbound")).0, Level::Ok);
        assert_eq!(
            eval(&t, &tr, Some("4XX,20,40,http,inbound; 5XX,0,10")),
            (Level::Degraded, Some("4xx 30.0 % over 1m ≥ 20 %".into()))
        );
        // an outbound-only tolerance does not judge inbound signals
        assert_eq!(eval(&t, &tr, Some("4XX,1,2,http,outbound")).0, Level::Ok);
        // a malformed annotation: a warning naming it, and the rules still judge
        let (l, r) = eval(&t, &tr, Some("4XX,ten,40"));
        assert_eq!(l, Level::Failure, "{r:?}");
        let (l, r) = eval(&t, &traffic(&[("200", 1.0)]), Some("4XX,ten,40"));
        assert_eq!(l, Level::Warning);
        assert!(
            r.unwrap_or_default()
                .contains("health.kiali.io/rate[0]: degraded \"ten\"")
        );
    }

    #[test]
    fn traffic_health_folds_into_object_health() {
        let ok = crate::model::Health::ok();
        let t = TrafficHealth {
            level: Level::Failure,
            reason: Some("5xx 50.0 % over 1m ≥ 10 %".into()),
        };
        let h = t.fold_into(&ok);
        assert_eq!(h.level, Level::Failure);
        assert_eq!(h.summary(), "failure: 5xx 50.0 % over 1m ≥ 10 %");
        let fine = TrafficHealth {
            level: Level::Ok,
            reason: None,
        };
        assert_eq!(fine.fold_into(&ok), ok);
    }

    #[test]
    fn bad_settings_name_the_field() {
        let mut rules = default_rules();
        rules[0].tolerance[1].code = "(".into();
        let e = Tolerances::new(&rules).expect_err("bad regex");
        assert!(e.starts_with("signals.rate[0].tolerance[1].code:"), "{e}");
        let mut rules = default_rules();
        rules[0].tolerance[0].failure = -1.0;
        assert!(Tolerances::new(&rules).is_err());
    }
}
