//! Checks beyond the types: one-of groups, ranges, durations, names, regexes. Every problem is
//! reported (not just the first), each at its field path.

use super::located::join_index;
use super::types::*;
use super::{Diagnostic, Origin, Severity};

const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

struct Check<'a> {
    origin: &'a Origin,
    diags: &'a mut Vec<Diagnostic>,
}

impl Check<'_> {
    fn error(&mut self, path: &str, msg: impl Into<String>) {
        self.diags.push(self.origin.at(Severity::Error, path, msg));
    }
    fn warn(&mut self, path: &str, msg: impl Into<String>) {
        self.diags
            .push(self.origin.at(Severity::Warning, path, msg));
    }
    fn duration(&mut self, path: &str, v: &Option<String>) {
        if let Some(s) = v
            && let Err(e) = parse_duration(s)
        {
            self.error(path, e);
        }
    }
    fn percent(&mut self, path: &str, v: f64) {
        if !(0.0..=100.0).contains(&v) {
            self.error(path, format!("must be between 0 and 100, found {v}"));
        }
    }
    fn regex(&mut self, path: &str, r: &str) {
        if let Err(e) = regex::Regex::new(r) {
            let first = e.to_string();
            let last = first.lines().last().unwrap_or("").trim().to_string();
            self.error(path, format!("invalid regex {r:?}: {last}"));
        }
    }
    fn string_match(&mut self, path: &str, m: &StringMatch) {
        let set = [m.exact.is_some(), m.prefix.is_some(), m.regex.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if set != 1 {
            self.error(
                path,
                format!("set exactly one of exact, prefix or regex (found {set})"),
            );
        }
        if let Some(r) = &m.regex {
            self.regex(&format!("{path}.regex"), r);
        }
    }
    fn name(&mut self, path: &str, what: &str, v: &str) {
        if v.is_empty() {
            self.error(path, format!("missing required field {what:?}"));
        }
    }
    fn cluster_ref(&mut self, path: &str, r: &ClusterObjectRef) {
        self.name(&format!("{path}.name"), "name", &r.name);
        self.name(&format!("{path}.namespace"), "namespace", &r.namespace);
        self.name(
            &format!("{path}.clusterName"),
            "clusterName",
            &r.cluster_name,
        );
    }
    fn matcher(&mut self, path: &str, m: &KubeMatcher) {
        for (k, v) in &m.labels {
            if let Some(why) = label_problem(k, v) {
                self.error(&super::located::join_key(&format!("{path}.labels"), k), why);
            }
        }
        for (i, n) in m.namespaces.iter().enumerate() {
            if n.is_empty() {
                self.error(
                    &join_index(&format!("{path}.namespaces"), i),
                    "empty namespace",
                );
            }
        }
        for (i, c) in m.clusters.iter().enumerate() {
            if c.is_empty() {
                self.error(
                    &join_index(&format!("{path}.clusters"), i),
                    "empty cluster name",
                );
            }
        }
    }
    fn destinations(&mut self, path: &str, sels: &[DestinationSelector]) {
        for (i, s) in sels.iter().enumerate() {
            let p = join_index(path, i);
            match (&s.kube_service_matcher, &s.kube_service_refs) {
                (Some(_), Some(_)) => {
                    self.error(&p, "set only one of kubeServiceMatcher or kubeServiceRefs")
                }
                (None, None) => self.error(&p, "set one of kubeServiceMatcher or kubeServiceRefs"),
                (Some(m), None) => self.matcher(&format!("{p}.kubeServiceMatcher"), m),
                (None, Some(r)) => {
                    let rp = format!("{p}.kubeServiceRefs.services");
                    if r.services.is_empty() {
                        self.error(&rp, "must list at least one service");
                    }
                    for (j, s) in r.services.iter().enumerate() {
                        self.cluster_ref(&join_index(&rp, j), s);
                    }
                }
            }
        }
    }
    fn workloads(&mut self, path: &str, sels: &[WorkloadSelector]) {
        for (i, s) in sels.iter().enumerate() {
            let p = join_index(path, i);
            match &s.kube_workload_matcher {
                Some(m) => self.matcher(&format!("{p}.kubeWorkloadMatcher"), m),
                None => self.error(&p, "set kubeWorkloadMatcher"),
            }
        }
    }
    fn identities(&mut self, path: &str, sels: &[IdentitySelector]) {
        for (i, s) in sels.iter().enumerate() {
            let p = join_index(path, i);
            match (&s.kube_identity_matcher, &s.kube_service_account_refs) {
                (None, None) => self.error(&p, "set kubeIdentityMatcher or kubeServiceAccountRefs"),
                (m, r) => {
                    if let Some(m) = m {
                        for (j, n) in m.namespaces.iter().enumerate() {
                            if n.is_empty() {
                                self.error(
                                    &join_index(&format!("{p}.kubeIdentityMatcher.namespaces"), j),
                                    "empty namespace",
                                );
                            }
                        }
                    }
                    if let Some(r) = r {
                        let rp = format!("{p}.kubeServiceAccountRefs.serviceAccounts");
                        if r.service_accounts.is_empty() {
                            self.error(&rp, "must list at least one service account");
                        }
                        for (j, sa) in r.service_accounts.iter().enumerate() {
                            let sp = join_index(&rp, j);
                            self.name(&format!("{sp}.name"), "name", &sa.name);
                            self.name(&format!("{sp}.namespace"), "namespace", &sa.namespace);
                        }
                    }
                }
            }
        }
    }
    fn method(&mut self, path: &str, m: &str) {
        if !METHODS.contains(&m) {
            self.error(
                path,
                format!(
                    "unknown HTTP method {m:?}{}; expected one of {}",
                    super::did_you_mean(m, METHODS),
                    METHODS.join(", ")
                ),
            );
        }
    }
    fn port(&mut self, path: &str, p: u32) {
        if !(1..=65535).contains(&p) {
            self.error(path, format!("port must be between 1 and 65535, found {p}"));
        }
    }
}

pub(super) fn traffic(s: &TrafficPolicySpec, origin: &Origin, diags: &mut Vec<Diagnostic>) {
    let mut c = Check { origin, diags };
    c.workloads("spec.sourceSelector", &s.source_selector);
    c.destinations("spec.destinationSelector", &s.destination_selector);
    for (i, m) in s.http_request_matchers.iter().enumerate() {
        let p = join_index("spec.httpRequestMatchers", i);
        let direct = m.prefix.is_some() || m.exact.is_some() || m.regex.is_some();
        match (&m.uri, direct) {
            (Some(_), true) => c.error(
                &p,
                "set the path with uri (Gloo Mesh 1.1) or with prefix, exact or regex (1.0), not both",
            ),
            (Some(u), false) => c.string_match(&format!("{p}.uri"), u),
            (None, true) => {
                if let Some(path) = m.path() {
                    c.string_match(&p, &path)
                }
            }
            (None, false) => {}
        }
        for (j, h) in m.headers.iter().enumerate() {
            let hp = join_index(&format!("{p}.headers"), j);
            c.name(&format!("{hp}.name"), "name", &h.name);
            if h.regex {
                c.regex(&format!("{hp}.value"), &h.value);
            }
        }
        for (j, q) in m.query_parameters.iter().enumerate() {
            let qp = join_index(&format!("{p}.queryParameters"), j);
            c.name(&format!("{qp}.name"), "name", &q.name);
            if q.regex {
                c.regex(&format!("{qp}.value"), &q.value);
            }
        }
        if let Some(method) = &m.method {
            c.method(&format!("{p}.method"), method);
        }
        if m.path().is_none()
            && m.headers.is_empty()
            && m.query_parameters.is_empty()
            && m.method.is_none()
        {
            c.warn(&p, "an empty matcher matches every request");
        }
    }
    let b = &s.policy;
    let base = "spec.policy";
    if *b == TrafficPolicyBody::default() {
        c.warn(base, "the policy sets nothing");
    }
    if let Some(ts) = &b.traffic_shift {
        let p = format!("{base}.trafficShift.destinations");
        if ts.destinations.is_empty() {
            c.error(&p, "must list at least one destination");
        }
        for (i, d) in ts.destinations.iter().enumerate() {
            let dp = join_index(&p, i);
            match &d.kube_service {
                None => c.error(&dp, "missing required field \"kubeService\""),
                Some(k) => {
                    let kp = format!("{dp}.kubeService");
                    c.name(&format!("{kp}.name"), "name", &k.name);
                    c.name(&format!("{kp}.namespace"), "namespace", &k.namespace);
                    c.name(&format!("{kp}.clusterName"), "clusterName", &k.cluster_name);
                    if let Some(port) = k.port {
                        c.port(&format!("{kp}.port"), port);
                    }
                    for (lk, lv) in &k.subset {
                        if let Some(why) = label_problem(lk, lv) {
                            c.error(&super::located::join_key(&format!("{kp}.subset"), lk), why);
                        }
                    }
                }
            }
        }
        if ts.destinations.len() > 1 && ts.destinations.iter().all(|d| d.weight == 0) {
            c.error(&p, "weights are all 0: no traffic would be sent");
        }
    }
    if let Some(f) = &b.fault_injection {
        let p = format!("{base}.faultInjection");
        match (&f.fixed_delay, &f.abort) {
            (Some(_), Some(_)) => c.error(&p, "set only one of fixedDelay or abort"),
            (None, None) => c.error(&p, "set one of fixedDelay or abort"),
            _ => {}
        }
        c.duration(&format!("{p}.fixedDelay"), &f.fixed_delay);
        if let Some(a) = &f.abort
            && !(200..=599).contains(&a.http_status)
        {
            c.error(
                &format!("{p}.abort.httpStatus"),
                format!(
                    "must be an HTTP status between 200 and 599, found {}",
                    a.http_status
                ),
            );
        }
        c.percent(&format!("{p}.percentage"), f.percentage);
    }
    c.duration(&format!("{base}.requestTimeout"), &b.request_timeout);
    if let Some(r) = &b.retries {
        if r.attempts < 0 {
            c.error(
                &format!("{base}.retries.attempts"),
                format!("must not be negative, found {}", r.attempts),
            );
        }
        c.duration(&format!("{base}.retries.perTryTimeout"), &r.per_try_timeout);
    }
    if let Some(cors) = &b.cors_policy {
        let p = format!("{base}.corsPolicy");
        for (i, o) in cors.allow_origins.iter().enumerate() {
            c.string_match(&join_index(&format!("{p}.allowOrigins"), i), o);
        }
        for (i, m) in cors.allow_methods.iter().enumerate() {
            c.method(&join_index(&format!("{p}.allowMethods"), i), m);
        }
        c.duration(&format!("{p}.maxAge"), &cors.max_age);
    }
    if let Some(m) = &b.mirror {
        let p = format!("{base}.mirror");
        match &m.kube_service {
            None => c.error(&p, "missing required field \"kubeService\""),
            Some(k) => c.cluster_ref(&format!("{p}.kubeService"), k),
        }
        if let Some(pc) = m.percentage {
            c.percent(&format!("{p}.percentage"), pc);
        }
        if let Some(port) = m.port {
            c.port(&format!("{p}.port"), port);
        }
    }
    if let Some(h) = &b.header_manipulation {
        let p = format!("{base}.headerManipulation");
        for (field, names) in [
            ("removeRequestHeaders", &h.remove_request_headers),
            ("removeResponseHeaders", &h.remove_response_headers),
        ] {
            for (i, n) in names.iter().enumerate() {
                if n.is_empty() {
                    c.error(&join_index(&format!("{p}.{field}"), i), "empty header name");
                }
            }
        }
        for (field, map) in [
            ("appendRequestHeaders", &h.append_request_headers),
            ("appendResponseHeaders", &h.append_response_headers),
        ] {
            if map.keys().any(String::is_empty) {
                c.error(&format!("{p}.{field}"), "empty header name");
            }
        }
    }
    if let Some(o) = &b.outlier_detection {
        let p = format!("{base}.outlierDetection");
        c.duration(&format!("{p}.interval"), &o.interval);
        c.duration(&format!("{p}.baseEjectionTime"), &o.base_ejection_time);
        if let Some(m) = o.max_ejection_percent
            && m > 100
        {
            c.error(
                &format!("{p}.maxEjectionPercent"),
                format!("must be between 0 and 100, found {m}"),
            );
        }
    }
    if let Some(m) = &b.mtls
        && m.istio.is_none()
    {
        c.error(&format!("{base}.mtls"), "missing required field \"istio\"");
    }
}

pub(super) fn access(s: &AccessPolicySpec, origin: &Origin, diags: &mut Vec<Diagnostic>) {
    let mut c = Check { origin, diags };
    c.identities("spec.sourceSelector", &s.source_selector);
    c.destinations("spec.destinationSelector", &s.destination_selector);
    for (i, p) in s.allowed_paths.iter().enumerate() {
        if p.is_empty() {
            c.error(&join_index("spec.allowedPaths", i), "empty path");
        }
    }
    for (i, m) in s.allowed_methods.iter().enumerate() {
        c.method(&join_index("spec.allowedMethods", i), m);
    }
    for (i, p) in s.allowed_ports.iter().enumerate() {
        c.port(&join_index("spec.allowedPorts", i), *p);
    }
}

pub(super) fn virtual_mesh(s: &VirtualMeshSpec, origin: &Origin, diags: &mut Vec<Diagnostic>) {
    let mut c = Check { origin, diags };
    if s.meshes.is_empty() {
        c.error("spec.meshes", "must list at least one mesh");
    }
    for (i, m) in s.meshes.iter().enumerate() {
        c.name(
            &format!("{}.name", join_index("spec.meshes", i)),
            "name",
            &m.name,
        );
    }
    if let Some(m) = &s.mtls_config
        && let Some(sh) = &m.shared
        && let Some(ca) = &sh.root_certificate_authority
    {
        let p = "spec.mtlsConfig.shared.rootCertificateAuthority";
        match (&ca.generated, &ca.secret) {
            (Some(_), Some(_)) => c.error(p, "set only one of generated or secret"),
            (None, None) => c.error(p, "set one of generated or secret"),
            (None, Some(r)) => c.name(&format!("{p}.secret.name"), "name", &r.name),
            _ => {}
        }
    }
    if let Some(f) = &s.federation {
        if let Some(h) = &f.host_suffix
            && let Some(why) = dns_subdomain(h)
        {
            c.error("spec.federation.hostnameSuffix", format!("{h:?} {why}"));
        }
        for (i, sel) in f.selectors.iter().enumerate() {
            let p = join_index("spec.federation.selectors", i);
            c.destinations(
                &format!("{p}.destinationSelectors"),
                &sel.destination_selectors,
            );
        }
    }
}

pub(super) fn virtual_destination(
    s: &VirtualDestinationSpec,
    origin: &Origin,
    diags: &mut Vec<Diagnostic>,
) {
    let mut c = Check { origin, diags };
    if s.hostname.is_empty() {
        c.error("spec", "missing required field \"hostname\"");
    } else if let Some(why) = dns_subdomain(&s.hostname) {
        c.error("spec.hostname", format!("{:?} {why}", s.hostname));
    }
    c.port("spec.port.number", s.port.number);
    const PROTOCOLS: &[&str] = &["HTTP", "HTTPS", "HTTP2", "GRPC", "TCP", "TLS", "MONGO"];
    // Gloo's docs write `protocol: http`: the case does not matter
    if !PROTOCOLS.contains(&s.port.protocol.to_ascii_uppercase().as_str()) {
        c.error(
            "spec.port.protocol",
            format!(
                "unknown protocol {:?}{}; expected one of {}",
                s.port.protocol,
                super::did_you_mean(&s.port.protocol, PROTOCOLS),
                PROTOCOLS.join(", ")
            ),
        );
    }
    match (&s.virtual_mesh, &s.mesh_list) {
        (None, None) => c.error(
            "spec",
            "missing required field \"virtualMesh\" (or \"meshList\")",
        ),
        (Some(_), Some(_)) => c.error("spec", "set only one of virtualMesh or meshList"),
        (Some(r), None) => c.name("spec.virtualMesh.name", "name", &r.name),
        (None, Some(l)) => {
            if l.meshes.is_empty() {
                c.error("spec.meshList.meshes", "must list at least one mesh");
            }
            for (i, m) in l.meshes.iter().enumerate() {
                c.name(
                    &format!("{}.name", join_index("spec.meshList.meshes", i)),
                    "name",
                    &m.name,
                );
            }
        }
    }
    if let Some(l) = &s.localized {
        if s.static_.is_some() {
            c.error("spec", "set only one of static or localized");
        }
        c.destinations(
            "spec.localized.destinationSelectors",
            &l.destination_selectors,
        );
        for (i, d) in l.failover_directives.iter().enumerate() {
            let p = join_index("spec.localized.failoverDirectives", i);
            c.name(&format!("{p}.from.region"), "region", &d.from.region);
            if d.to.is_empty() {
                c.error(&format!("{p}.to"), "must list at least one locality");
            }
            for (j, t) in d.to.iter().enumerate() {
                c.name(
                    &format!("{}.region", join_index(&format!("{p}.to"), j)),
                    "region",
                    &t.region,
                );
            }
        }
        return;
    }
    match &s.static_ {
        None => c.error(
            "spec",
            "missing required field \"static\" (or \"localized\")",
        ),
        Some(st) => {
            if st.destinations.is_empty() {
                c.error(
                    "spec.static.destinations",
                    "must list at least one destination",
                );
            }
            for (i, d) in st.destinations.iter().enumerate() {
                let p = join_index("spec.static.destinations", i);
                match &d.kube_service {
                    None => c.error(&p, "missing required field \"kubeService\""),
                    Some(k) => c.cluster_ref(&format!("{p}.kubeService"), k),
                }
            }
        }
    }
}

/// Why `s` is not a DNS-1123 subdomain (what Kubernetes requires of names), if it is not.
pub fn dns_subdomain(s: &str) -> Option<String> {
    if s.len() > 253 {
        return Some("is longer than 253 characters".into());
    }
    let ok_chars = s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !ok_chars || !ends_ok(s.chars().next()) || !ends_ok(s.chars().last()) {
        return Some(
            "is not a valid name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
                .into(),
        );
    }
    None
}

fn label_problem(k: &str, v: &str) -> Option<String> {
    if k.is_empty() {
        return Some("empty label key".into());
    }
    if v == "*" {
        return None; // the wildcard, in Role scopes
    }
    let ok = v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    (!ok).then(|| {
        format!("label value {v:?} is not valid: at most 63 of a-z, A-Z, 0-9, '-', '_', '.'")
    })
}

/// Parse a duration as Go and protobuf write it (`1.5s`, `100ms`, `1m30s`, `2h`) into
/// nanoseconds. Istio's schema requires at least 1ms.
pub(crate) fn parse_duration(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "invalid duration {s:?}: expected a number and a unit, like \"1.5s\", \"250ms\" or \"1m30s\""
        )
    };
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_end == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    if total < 1e6 {
        return Err(format!(
            "duration {s:?} is shorter than 1ms (Istio's minimum)"
        ));
    }
    Ok(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("250ms"), Ok(250_000_000));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("500us").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn names() {
        assert_eq!(dns_subdomain("reviews-v2.default"), None);
        assert!(dns_subdomain("Reviews").is_some());
        assert!(dns_subdomain("-a").is_some());
    }
}
