//! Every subcommand and flag of `meshdeck` (clap). No business logic here.

#[cfg(feature = "sim")]
use crate::sim::Scenario;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "meshdeck",
    version,
    about = "A terminal console for operating Istio service meshes across many Kubernetes clusters",
    long_about = "meshdeck connects to many kubeconfig contexts at once, shows live views of clusters, \
meshes, services and workloads, and translates simple source -> policy -> target policies into the \
Istio objects of every affected cluster.\n\nRun with no subcommand to open the console; \
`meshdeck demo` opens it on an embedded simulated fleet.\n\nSession flags (--kubeconfig, --context, \
--all-contexts, --readonly, --as, --as-group, --request-timeout) mean the same before or after the \
subcommand."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The session flags given before the subcommand (merged with those given after it).
    #[command(flatten)]
    pub session: SessionArgs,
    #[command(flatten)]
    pub ui: UiArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Write logs here instead of the state directory's meshdeck.log.
    #[arg(long, global = true, value_name = "PATH", env = "MESHDECK_LOG_FILE")]
    pub log_file: Option<PathBuf>,
    /// More log detail (-v debug, -vv trace). MESHDECK_LOG takes a full filter.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// How the console looks and which keys it takes.
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct UiArgs {
    /// Console theme: default, 16color, mono, light, production, or a file name in the themes
    /// directory. NO_COLOR (set, non-empty) always means mono.
    #[arg(long, value_name = "NAME")]
    pub theme: Option<String>,
    /// Console keymap: default (k9s), vim, or a file name in the keymaps directory.
    #[arg(long, value_name = "NAME")]
    pub keymap: Option<String>,
    /// The console's policy directory: the policies view lists its files, and policies
    /// created in the console are saved there (default: <state dir>/policies).
    #[arg(long, value_name = "DIR", env = "MESHDECK_POLICIES")]
    pub policies: Option<PathBuf>,
    /// Where `c` copies to: `osc52` (the terminal's clipboard, through SSH and tmux), `off`,
    /// or `auto` (osc52 over SSH or inside tmux, else off).
    #[arg(long, value_name = "auto|osc52|off")]
    pub clipboard: Option<ClipboardMode>,
    /// Open the views in this namespace (k9s's -n); `:ns NAME` switches it, `:ns all` clears.
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Every namespace (the default; k9s's -A).
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// The view to open first, as a command (k9s's -c): `-c svc`, `-c "po @eu-west"`.
    #[arg(short = 'c', long = "command", value_name = "VIEW")]
    pub start_command: Option<String>,
    /// No header: two more rows for the table in a tiny pane (k9s's --headless).
    #[arg(long)]
    pub headless: bool,
}

/// The console's clipboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClipboardMode {
    Auto,
    Osc52,
    Off,
}

/// Which clusters to talk to.
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct TargetArgs {
    /// Kubeconfig file(s); default: $KUBECONFIG (colon-separated), else ~/.kube/config.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Contexts to connect to, comma-separated (default: the current context).
    #[arg(long, value_delimiter = ',', value_name = "CTX,...")]
    pub context: Vec<String>,
    /// Connect to every context of the kubeconfig.
    #[arg(long, conflicts_with = "context")]
    pub all_contexts: bool,
}

/// What the session may do, and as whom.
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct AccessArgs {
    /// Never send a mutating request: no writer exists, and every client refuses any request
    /// that is not a read before it leaves the process.
    #[arg(long)]
    pub readonly: bool,
    /// Act as this user, as kubectl does (Impersonate-User): access reviews, reads and writes
    /// run as that user, and meshdeck Roles are checked for it.
    #[arg(long = "as", value_name = "USER", value_parser = impersonation_name)]
    pub as_user: Option<String>,
    /// Groups to act as (Impersonate-Group); repeatable.
    #[arg(long = "as-group", value_name = "GROUP", value_parser = impersonation_name)]
    pub as_groups: Vec<String>,
    /// The longest one request may take (seconds) before it fails; watches are not cut.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout: Option<u64>,
}

/// The session flags: which clusters, and what the session may do there.
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct SessionArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    #[command(flatten)]
    pub access: AccessArgs,
}

/// A flag given both before and after the subcommand, with two different values.
fn pick<T: Clone + PartialEq + std::fmt::Debug>(
    name: &str,
    before: &Option<T>,
    after: &Option<T>,
) -> Result<Option<T>, String> {
    match (before, after) {
        (Some(a), Some(b)) if a != b => Err(format!(
            "{name} is given twice with different values ({a:?} before the subcommand, {b:?} after it)"
        )),
        _ => Ok(after.clone().or_else(|| before.clone())),
    }
}

fn pick_list<T: Clone + PartialEq + std::fmt::Debug>(
    name: &str,
    before: &[T],
    after: &[T],
) -> Result<Vec<T>, String> {
    match (before.is_empty(), after.is_empty()) {
        (false, false) if before != after => Err(format!(
            "{name} is given twice with different values ({before:?} before the subcommand, {after:?} after it)"
        )),
        (_, false) => Ok(after.to_vec()),
        _ => Ok(before.to_vec()),
    }
}

impl TargetArgs {
    fn merge(&self, after: &TargetArgs) -> Result<TargetArgs, String> {
        let t = TargetArgs {
            kubeconfig: pick("--kubeconfig", &self.kubeconfig, &after.kubeconfig)?,
            context: pick_list("--context", &self.context, &after.context)?,
            all_contexts: self.all_contexts || after.all_contexts,
        };
        if t.all_contexts && !t.context.is_empty() {
            return Err("--all-contexts and --context exclude each other".into());
        }
        Ok(t)
    }
}

impl AccessArgs {
    fn merge(&self, after: &AccessArgs) -> Result<AccessArgs, String> {
        Ok(AccessArgs {
            readonly: self.readonly || after.readonly,
            as_user: pick("--as", &self.as_user, &after.as_user)?,
            as_groups: pick_list("--as-group", &self.as_groups, &after.as_groups)?,
            request_timeout: pick(
                "--request-timeout",
                &self.request_timeout,
                &after.request_timeout,
            )?,
        })
    }
}

impl SessionArgs {
    /// The flags given before the subcommand, merged with those after it: a switch is on when
    /// it is on in either place; a value given in both places must be the same.
    pub fn merge(&self, after: &SessionArgs) -> Result<SessionArgs, String> {
        Ok(SessionArgs {
            targets: self.targets.merge(&after.targets)?,
            access: self.access.merge(&after.access)?,
        })
    }
}

impl UiArgs {
    pub fn merge(&self, after: &UiArgs) -> Result<UiArgs, String> {
        Ok(UiArgs {
            theme: pick("--theme", &self.theme, &after.theme)?,
            keymap: pick("--keymap", &self.keymap, &after.keymap)?,
            policies: pick("--policies", &self.policies, &after.policies)?,
            clipboard: pick("--clipboard", &self.clipboard, &after.clipboard)?,
            namespace: pick("--namespace", &self.namespace, &after.namespace)?,
            all_namespaces: self.all_namespaces || after.all_namespaces,
            start_command: pick("--command", &self.start_command, &after.start_command)?,
            headless: self.headless || after.headless,
        })
    }
}

/// What a command runs with, after the flags before and after the subcommand are merged.
#[derive(Debug)]
pub struct Resolved {
    pub session: SessionArgs,
    pub ui: UiArgs,
}

impl Cli {
    /// Merge the session and console flags given before the subcommand into the subcommand's
    /// own, and refuse those that mean nothing for it (`meshdeck --readonly sim serve`).
    pub fn resolve(&self) -> Result<Resolved, String> {
        let none = SessionArgs::default();
        let no_ui = UiArgs::default();
        let (name, session, ui): (&str, Option<&SessionArgs>, Option<&UiArgs>) = match &self.command
        {
            None => ("", Some(&none), Some(&no_ui)),
            Some(Command::Status(a)) => ("status", Some(&a.session), None),
            Some(Command::Translate(a)) => ("translate", Some(&a.session), None),
            Some(Command::Check(a)) => ("check", Some(&a.session), None),
            Some(Command::Analyze(a)) => ("analyze", Some(&a.session), None),
            Some(Command::Diff(a)) => ("diff", Some(&a.session), None),
            Some(Command::Apply(a)) => ("apply", Some(&a.session), None),
            #[cfg(feature = "sim")]
            Some(Command::Demo(a)) => {
                if self.session.targets != TargetArgs::default() {
                    return Err("`meshdeck demo` makes its own kubeconfig and contexts: \
--kubeconfig, --context and --all-contexts mean nothing for it"
                        .into());
                }
                let session = SessionArgs {
                    targets: TargetArgs::default(),
                    access: a.access.clone(),
                };
                return Ok(Resolved {
                    session: self.session.merge(&session)?,
                    ui: self.ui.merge(&a.ui)?,
                });
            }
            Some(Command::Info(_)) => ("info", None, None),
            #[cfg(feature = "sim")]
            Some(Command::Screenshots(_)) => ("screenshots", None, None),
            #[cfg(feature = "sim")]
            Some(Command::Sim(SimCommand::Serve(_))) => ("sim serve", None, None),
            #[cfg(feature = "sim")]
            Some(Command::Sim(SimCommand::Ctl(_))) => ("sim ctl", None, None),
            Some(Command::Completions { .. }) => ("completions", None, None),
        };
        if session.is_none() && self.session != SessionArgs::default() {
            return Err(format!(
                "the session flags (--kubeconfig, --context, --all-contexts, --readonly, --as, \
--as-group, --request-timeout) mean nothing for `meshdeck {name}`"
            ));
        }
        if ui.is_none() && self.ui != UiArgs::default() {
            return Err(format!(
                "console flags (--theme, --keymap, --policies, --clipboard, -n, -A, -c, --headless) mean nothing for `meshdeck {name}`"
            ));
        }
        Ok(Resolved {
            session: match session {
                Some(s) => self.session.merge(s)?,
                None => SessionArgs::default(),
            },
            ui: match ui {
                Some(u) => self.ui.merge(u)?,
                None => UiArgs::default(),
            },
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start an embedded simulated fleet (no cluster needed) and open meshdeck on it.
    #[cfg(feature = "sim")]
    Demo(DemoArgs),
    /// Print every path meshdeck uses: config, themes, keymaps, logs, audit log.
    Info(InfoArgs),
    /// Write pictures (SVG) of the console's main views, rendered from the demo fleet.
    #[cfg(feature = "sim")]
    Screenshots(ScreenshotArgs),
    /// The simulated fleet: serve it, or control a running one.
    #[cfg(feature = "sim")]
    #[command(subcommand)]
    Sim(SimCommand),
    /// Print the fleet's clusters, meshes and health (headless); what is known is printed
    /// even when a cluster did not sync.
    #[command(after_help = crate::pipeline::Exit::help_for("status"))]
    Status(StatusArgs),
    /// Translate policies into Istio objects per cluster (headless): the objects as a YAML
    /// stream on stdout, each annotated with its cluster; policy statuses on stderr.
    #[command(after_help = crate::pipeline::Exit::help_for("translate"))]
    Translate(TranslateArgs),
    /// Diff the objects the policies generate against what is live, per cluster (headless),
    /// with the meshdeck role check and Kubernetes RBAC an apply would meet.
    #[command(after_help = crate::pipeline::Exit::help_for("diff"))]
    Diff(ApplyArgs),
    /// Apply the objects the policies generate to every affected cluster: plan, server-side
    /// dry-run of everything, then server-side apply (field manager `meshdeck`) and prune,
    /// with an audit log (headless).
    #[command(after_help = crate::pipeline::Exit::help_for("apply"))]
    Apply(ApplyArgs),
    /// Validate policies: load, check every field, translate, and validate the generated
    /// objects against Istio's schemas, printing only problems and statuses (headless); with a
    /// live fleet, also whether each policy would take effect there.
    #[command(after_help = crate::pipeline::Exit::help_for("check"))]
    Check(TranslateArgs),
    /// Analyze the fleet's Istio configuration as istioctl analyze does, every cluster at once
    /// (headless): findings with Istio's codes, the object, the field and a fix; a finding at
    /// or above --level (default error) fails the run.
    #[command(after_help = crate::pipeline::Exit::help_for("analyze"))]
    Analyze(AnalyzeArgs),
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// How `diff`, `apply` and `check` print what they found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    #[default]
    Text,
    Json,
    Yaml,
}

#[derive(Debug, Args)]
pub struct TranslateArgs {
    /// Policy files or directories (every *.yaml / *.yml below); repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// Read the fleet offline from DIR/<cluster>/*.yaml (plain manifests) instead of
    /// connecting to clusters.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["context", "all_contexts", "kubeconfig"])]
    pub inventory: Option<PathBuf>,
    #[command(flatten)]
    pub session: SessionArgs,
    /// translate: the objects as a YAML stream (text, yaml) or a JSON `List` (json).
    /// check: the report as text, or as JSON / YAML.
    #[arg(short, long, value_enum, default_value_t = ReportFormat::Text)]
    pub output: ReportFormat,
    /// Wait at most this long for live clusters to sync.
    #[arg(long, default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub wait_synced: u64,
    /// check: warnings fail too (exit 3), as conflicts do — for CI.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Read the fleet offline from DIR/<cluster>/*.yaml instead of connecting to clusters.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["context", "all_contexts", "kubeconfig"])]
    pub inventory: Option<PathBuf>,
    #[command(flatten)]
    pub session: SessionArgs,
    /// A table (text), or JSON / YAML.
    #[arg(short, long, value_enum, default_value_t = ReportFormat::Text)]
    pub output: ReportFormat,
    /// The least level that fails the run (a CI gate): error, warning or info.
    #[arg(long, value_name = "LEVEL", default_value = "error", value_parser = ["error", "warning", "info"])]
    pub level: String,
    /// Wait at most this long for live clusters to sync.
    #[arg(long, default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub wait_synced: u64,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Policy files or directories (every *.yaml / *.yml below); repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub session: SessionArgs,
    /// Output format: the plan as text, or as JSON / YAML (plan, holds and report).
    #[arg(short, long, value_enum, default_value_t = ReportFormat::Text)]
    pub output: ReportFormat,
    /// Also delete live objects meshdeck owns that no policy generates any more.
    #[arg(long)]
    pub prune: bool,
    /// Server-side dry-run only: nothing is written (apply).
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (apply). Needed when stdin is not a terminal.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Take over fields another field manager owns (server-side apply `force`).
    #[arg(long)]
    pub force_conflicts: bool,
    /// The context whose cluster stores the policies as custom resources: `apply` writes the
    /// -f policies there too (with --prune, meshdeck-managed policy CRs not in the files go).
    #[arg(long, value_name = "CTX")]
    pub mgmt_context: Option<String>,
    /// Files or directories with meshdeck Roles and RoleBindings (they may also come with -f).
    #[arg(long, value_name = "PATH")]
    pub roles: Vec<PathBuf>,
    /// Wait at most this long for clusters to sync.
    #[arg(long, default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub wait_synced: u64,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub session: SessionArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = crate::status::Format::Table)]
    pub output: crate::status::Format,
    /// Wait at most this long for every cluster to sync.
    #[arg(long, default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub wait_synced: u64,
    /// Also print every service (destination), with a CLUSTER column.
    #[arg(long)]
    pub services: bool,
    /// Also print every workload, with a CLUSTER column.
    #[arg(long)]
    pub workloads: bool,
    /// Golden signals: RPS, ERR %, P99 and traffic health of services and workloads, the
    /// edges, and where each cluster's signals came from (Prometheus or the sidecars).
    /// Prints the services when neither --services nor --workloads is given.
    #[arg(long)]
    pub signals: bool,
}

#[derive(Debug, Args)]
pub struct ScreenshotArgs {
    /// Directory to write the pictures into.
    #[arg(long, default_value = "screenshots", value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Do not open the console: print the kubeconfig and keep the fleet running for kubectl.
    #[arg(long)]
    pub no_console: bool,
    /// Number of simulated clusters.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub clusters: u16,
    /// Fill each cluster up to this many pods.
    #[arg(long, value_name = "N")]
    pub pods_per_cluster: Option<usize>,
    /// One random change (rollout, restart, scale) per cluster this often; 0 turns churn off.
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    pub churn_ms: u64,
    /// Also serve the control endpoint here (see `meshdeck sim ctl`).
    #[arg(long, value_name = "ADDR")]
    pub control: Option<SocketAddr>,
    #[command(flatten)]
    pub access: AccessArgs,
    #[command(flatten)]
    pub ui: UiArgs,
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum InfoFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = InfoFormat::Text)]
    pub output: InfoFormat,
}

#[cfg(feature = "sim")]
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Serve N simulated clusters over the Kubernetes HTTP API on 127.0.0.1 until SIGINT/SIGTERM.
    Serve(SimServeArgs),
    /// Control a running simulator through its control endpoint.
    Ctl(SimCtlArgs),
}

#[cfg(feature = "sim")]
#[derive(Debug, Args)]
pub struct SimServeArgs {
    /// Number of simulated clusters.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub clusters: u16,
    /// Write a kubeconfig with a context per cluster (and `<cluster>-viewer`) here.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: PathBuf,
    /// What the clusters contain.
    #[arg(long, value_enum, default_value_t = Scenario::Demo)]
    pub scenario: Scenario,
    /// Serve the control endpoint on this loopback address (e.g. 127.0.0.1:0 for any port).
    #[arg(long, value_name = "ADDR")]
    pub control: Option<SocketAddr>,
    /// Fill each demo cluster up to this many pods (for benchmarks).
    #[arg(long, value_name = "N")]
    pub pods_per_cluster: Option<usize>,
    /// One random change per demo cluster this often; 0 (the default) keeps the fleet still.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub churn_ms: u64,
    /// Seconds between watch bookmarks for watches that ask for them.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub bookmark_secs: u64,
    /// Seed of the scenario's random choices.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct SimCtlArgs {
    /// The simulator's control endpoint (printed in its ready line).
    #[arg(long, value_name = "ADDR", env = "MESHDECK_SIM_CONTROL")]
    pub control: SocketAddr,
    #[command(subcommand)]
    pub action: SimCtlAction,
}

#[derive(Debug, Subcommand)]
pub enum SimCtlAction {
    /// Inject or clear a fault: down | up | latency=MS | error=CODE | hang | hang-writes | html |
    /// huge-body | endless-line | expire-watches | watch-error=CODE | garbage-watch |
    /// retry-after=SECS | wrong-kind | endless-pages | big-objects | redirect |
    /// content-type=yaml|protobuf | clear.
    Fault { cluster: String, spec: String },
    /// Print a cluster's request log as JSON lines (method, path, query, user, status).
    Requests {
        cluster: String,
        /// Only requests that would change something (dry runs excluded).
        #[arg(long)]
        mutating: bool,
    },
    /// Forget a cluster's request log.
    ClearRequests { cluster: String },
    /// List the clusters with their URLs and faults.
    Clusters,
    /// Pause (`stop`) or resume (`start`) every cluster's churn (`sim serve --churn-ms`).
    Churn {
        #[arg(value_parser = ["stop", "start"])]
        what: String,
    },
}

/// A user or group name to act as: it travels in an HTTP header (`Impersonate-User`), so it
/// must be one (not empty, no control characters, no line ends).
fn impersonation_name(v: &str) -> Result<String, String> {
    if v.trim().is_empty() {
        return Err("an empty name: give the user or group to act as".into());
    }
    if let Some(c) = v.chars().find(|c| c.is_control()) {
        return Err(format!(
            "{} holds the control character U+{:04X}: a name cannot travel in the Impersonate header",
            crate::text::escape(v),
            u32::from(c)
        ));
    }
    http::HeaderValue::from_str(v)
        .map(|_| v.to_string())
        .map_err(|e| format!("{}: not a valid header value: {e}", crate::text::escape(v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn resolved(args: &[&str]) -> Result<Resolved, String> {
        Cli::try_parse_from(args)
            .map_err(|e| e.to_string())?
            .resolve()
    }

    #[test]
    fn readonly_before_or_after_every_subcommand_is_read_only() {
        for sub in [
            &["demo"][..],
            &["status"],
            &["diff", "-f", "x"],
            &["apply", "-f", "x"],
            &["translate", "-f", "x"],
            &["check", "-f", "x"],
        ] {
            let mut before = vec!["meshdeck", "--readonly"];
            before.extend(sub);
            let mut after = vec!["meshdeck"];
            after.extend(sub);
            after.push("--readonly");
            for args in [before, after] {
                let r = resolved(&args).expect("parses");
                assert!(r.session.access.readonly, "{args:?}");
            }
        }
        assert!(
            resolved(&["meshdeck", "--readonly"])
                .expect("console")
                .session
                .access
                .readonly
        );
        assert!(
            !resolved(&["meshdeck", "status"])
                .expect("status")
                .session
                .access
                .readonly
        );
    }

    #[test]
    fn fleet_flags_are_read_in_either_place_and_must_agree() {
        let r = resolved(&[
            "meshdeck",
            "--kubeconfig",
            "/k",
            "--context",
            "a,b",
            "status",
        ])
        .expect("ok");
        assert_eq!(r.session.targets.kubeconfig, Some(PathBuf::from("/k")));
        assert_eq!(r.session.targets.context, ["a", "b"]);
        let r = resolved(&[
            "meshdeck",
            "--as",
            "alice",
            "apply",
            "-f",
            "x",
            "--as-group",
            "g",
        ])
        .expect("ok");
        assert_eq!(r.session.access.as_user.as_deref(), Some("alice"));
        assert_eq!(r.session.access.as_groups, ["g"]);
        // the same value twice is fine; two values are not
        assert!(
            resolved(&[
                "meshdeck",
                "--context",
                "a",
                "diff",
                "-f",
                "x",
                "--context",
                "a"
            ])
            .is_ok()
        );
        let e = resolved(&[
            "meshdeck",
            "--context",
            "a",
            "diff",
            "-f",
            "x",
            "--context",
            "b",
        ])
        .expect_err("two values");
        assert!(e.contains("--context is given twice"), "{e}");
        let e = resolved(&[
            "meshdeck",
            "--request-timeout",
            "5",
            "status",
            "--request-timeout",
            "6",
        ])
        .expect_err("two values");
        assert!(e.contains("--request-timeout"), "{e}");
        // console flags before `demo` reach the demo's console
        let r = resolved(&["meshdeck", "--theme", "mono", "demo"]).expect("ok");
        assert_eq!(r.ui.theme.as_deref(), Some("mono"));
    }

    #[test]
    fn flags_that_mean_nothing_for_a_subcommand_are_refused() {
        let e = resolved(&[
            "meshdeck",
            "--readonly",
            "sim",
            "serve",
            "--kubeconfig",
            "k",
        ])
        .expect_err("refused");
        assert!(e.contains("`meshdeck sim serve`"), "{e}");
        let e = resolved(&["meshdeck", "--theme", "x", "diff", "-f", "y"]).expect_err("refused");
        assert!(e.contains("console flags"), "{e}");
        let e = resolved(&["meshdeck", "--context", "c", "demo"]).expect_err("refused");
        assert!(e.contains("makes its own kubeconfig"), "{e}");
        // and clap itself refuses what a subcommand does not offer
        assert!(
            resolved(&[
                "meshdeck",
                "sim",
                "serve",
                "--kubeconfig",
                "k",
                "--theme",
                "x"
            ])
            .is_err()
        );
        assert!(resolved(&["meshdeck", "status", "--wait-synced", "99999999999"]).is_err());
    }
}
