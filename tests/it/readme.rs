//! The README is executed: what it says the binary prints is what the binary prints, every
//! `meshdeck …` command it shows parses with the real flags, the offline examples run against
//! the inventory in `tests/data/fleet`, and its exit-code table is the one in `pipeline::Exit`.
//! `MESHDECK_BLESS=1 cargo test readme` rewrites the generated table.

use crate::common::*;
use clap::Parser;

fn readme() -> String {
    std::fs::read_to_string("README.md").expect("README.md")
}

/// The fenced blocks of the README: (info string, first line number, text).
fn blocks(text: &str) -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    let mut open: Option<(String, usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        if let Some(info) = line.strip_prefix("```") {
            match open.take() {
                Some(b) => out.push(b),
                None => open = Some((info.trim().to_string(), n + 2, String::new())),
            }
        } else if let Some((_, _, body)) = open.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

const MARK: &str = "<!-- exit-codes: generated from pipeline::Exit::markdown_table, checked by tests/it/readme.rs -->\n";

#[test]
fn the_exit_code_table_is_the_one_the_binary_uses() {
    let text = readme();
    let at = text
        .find(MARK)
        .expect("the README marks its exit-code table")
        + MARK.len();
    let end = text[at..]
        .find("\n\n")
        .map(|e| at + e + 1)
        .unwrap_or(text.len());
    let want = meshdeck::pipeline::Exit::markdown_table();
    if std::env::var_os("MESHDECK_BLESS").is_some() {
        let fixed = format!("{}{}{}", &text[..at], want, &text[end..]);
        std::fs::write("README.md", fixed).expect("write README.md");
        return;
    }
    assert_eq!(
        &text[at..end],
        want,
        "README's exit codes differ from pipeline::Exit (MESHDECK_BLESS=1 rewrites them)"
    );
    // and every subcommand's --help lists its codes from the same table
    let home = tempfile::tempdir().expect("tempdir");
    for (cmd, codes) in meshdeck::pipeline::EXITS {
        let out = meshdeck_in(home.path())
            .args([cmd, "--help"])
            .output()
            .expect("runs");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Exit codes"), "{cmd} --help: {help}");
        // clap wraps the help to the terminal: compare words
        let flat = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
        let words = flat(&help);
        for c in codes.iter() {
            assert!(
                words.contains(&flat(&format!("{} {}", c.as_u8(), c.meaning()))),
                "{cmd} --help lacks {c:?}: {help}"
            );
        }
        for c in meshdeck::pipeline::Exit::ALL {
            if !codes.contains(&c) {
                assert!(
                    !words.contains(&flat(c.meaning())),
                    "{cmd} --help lists {c:?}, which it cannot end with"
                );
            }
        }
        // no stale exit words left in the doc comments
        for stale in ["Exit 1 when", "Exit 0 when"] {
            assert!(!help.contains(stale), "{cmd} --help: {help}");
        }
    }
}

/// Every `meshdeck …` line of a shell block parses with the binary's own flags (a renamed or
/// removed flag in the README fails here).
#[test]
fn every_command_the_readme_shows_parses() {
    let text = readme();
    let mut seen = 0;
    for (info, line, body) in blocks(&text) {
        if info != "sh" {
            continue;
        }
        for (k, l) in body.lines().enumerate() {
            let l = l.split(" #").next().unwrap_or(l).trim();
            let l = l.trim_end_matches('&').trim();
            let Some(rest) = l.strip_prefix("meshdeck ") else {
                continue;
            };
            let words: Vec<String> = std::iter::once("meshdeck".to_string())
                .chain(
                    rest.split_whitespace()
                        .take_while(|w| !matches!(*w, ">" | "|" | "2>" | "&&"))
                        .map(|w| w.replace('~', "/home/you")),
                )
                .collect();
            let parsed = meshdeck::cli::Cli::try_parse_from(&words);
            let resolved = parsed.as_ref().map(|c| c.resolve());
            assert!(
                matches!(resolved, Ok(Ok(_))),
                "README.md:{}: `{l}` does not parse: {:?}",
                line + k,
                parsed.err().map(|e| e.to_string())
            );
            seen += 1;
        }
    }
    assert!(
        seen >= 20,
        "only {seen} meshdeck commands found in the README"
    );
}

/// The offline examples run as shown, with the exit codes the README gives them.
#[test]
fn the_offline_examples_run_as_the_readme_says() {
    let home = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| meshdeck_in(home.path()).args(args).output().expect("runs");
    let out = run(&[
        "translate",
        "-f",
        "examples/policies",
        "--inventory",
        "tests/data/fleet",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("kind: VirtualService"));
    let out = run(&[
        "check",
        "-f",
        "examples/policies",
        "--inventory",
        "tests/data/fleet",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert!(out.stdout.is_empty(), "check prints no objects");

    // "prints exactly": the block after the sentence that names the command
    let text = readme();
    let cmd = "`meshdeck check -f examples/broken --inventory tests/data/fleet`";
    let at = text.find(cmd).expect("the README shows the broken example");
    let (_, _, shown) = blocks(&text[at..])
        .into_iter()
        .next()
        .expect("its output block");
    let out = run(&[
        "check",
        "-f",
        "examples/broken",
        "--inventory",
        "tests/data/fleet",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for l in shown.lines() {
        // a line the README shortens with `...` matches up to there
        let l = l.split(" ...").next().unwrap_or(l);
        assert!(
            stderr.lines().any(|s| s.starts_with(l)),
            "README shows `{l}`; the binary printed:\n{stderr}"
        );
    }
}

/// Every file the README links to or names by its path is in the repository (a renamed test
/// module or a moved script fails here).
#[test]
fn every_path_the_readme_names_exists() {
    let text = readme();
    let mut missing = Vec::new();
    let mut seen = 0;
    // markdown links and images: `](path)`
    for part in text.split("](").skip(1) {
        let target = part.split(')').next().unwrap_or("");
        let target = target.split('#').next().unwrap_or("");
        if target.is_empty() || target.contains("://") {
            continue;
        }
        seen += 1;
        if !std::path::Path::new(target).exists() {
            missing.push(target.to_string());
        }
    }
    // paths in backticks that name a file of the repository: `dir/…/name.ext`
    for part in text.split('`').skip(1).step_by(2) {
        let p = part.split_whitespace().next().unwrap_or("");
        let looks = p.contains('/')
            && !p.starts_with("../")
            && !p.starts_with('/')
            && !p.starts_with('~')
            && !p.contains(['<', '*', '$', '{', '…'])
            && [".rs", ".md", ".sh", ".yaml", ".svg", ".toml"]
                .iter()
                .any(|e| p.ends_with(e));
        if !looks || p.contains("://") {
            continue;
        }
        seen += 1;
        if !std::path::Path::new(p).exists() {
            missing.push(p.to_string());
        }
    }
    assert!(seen >= 10, "only {seen} paths found");
    assert!(
        missing.is_empty(),
        "README names paths that do not exist: {missing:?}"
    );
}
