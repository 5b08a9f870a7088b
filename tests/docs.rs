//! The documentation holds together: README.md and docs/*.md. Every relative link reaches a
//! file, and every `#anchor` a heading of the page it names (GitHub's anchors); every
//! `swf-warden` command in a shell block names a command the binary has, as its own `--help`
//! lists them; and the README stays a front door: short, with the quick start's two commands
//! and a link to every page of docs/.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_swf-warden");

/// The README's length, at most.
const README_LINES: usize = 200;

/// The quick start's two commands, verbatim: run the proxy, run the tests.
const QUICK_START: [&str; 2] = [
    "cargo run --release -- serve --config config.example.toml",
    "bash .ci/run",
];

/// Code blocks whose lines are commands.
const SHELLS: [&str; 4] = ["bash", "sh", "shell", "console"];

/// How the docs run the binary; the command's words follow.
const INVOCATIONS: [&str; 4] = [
    "swf-warden ",
    "./target/release/swf-warden ",
    "target/release/swf-warden ",
    "cargo run --release -- ",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md, then every docs/*.md in name order.
fn pages(root: &Path) -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    docs.insert(0, root.join("README.md"));
    docs
}

/// The page with its fenced code blocks blanked out line for line: what is left is prose, at
/// the same line numbers.
fn without_code_blocks(text: &str) -> String {
    let mut fenced = false;
    let lines: Vec<&str> = text
        .lines()
        .map(|line| {
            let fence = line.trim_start().starts_with("```");
            if fence {
                fenced = !fenced;
            }
            if fence || fenced {
                ""
            } else {
                line
            }
        })
        .collect();
    lines.join("\n")
}

/// Each fenced code block: its info string (`sh`, `console`, …) and its lines, numbered.
fn code_blocks(text: &str) -> Vec<(String, Vec<(usize, &str)>)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, Vec<(usize, &str)>)> = None;
    for (index, line) in text.lines().enumerate() {
        match (line.trim_start().strip_prefix("```"), open.take()) {
            (Some(info), None) => open = Some((info.trim().to_owned(), Vec::new())),
            (Some(_), Some(block)) => blocks.push(block),
            (None, Some(mut block)) => {
                block.1.push((index + 1, line));
                open = Some(block);
            }
            (None, None) => {}
        }
    }
    blocks
}

/// `text` without its inline code spans (a run of backticks up to the next run as long, within
/// one paragraph), newlines kept so that line numbers still hold.
fn without_code_spans(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let ticks = rest[start..].len() - rest[start..].trim_start_matches('`').len();
        let after = &rest[start + ticks..];
        let paragraph = &after[..after.find("\n\n").unwrap_or(after.len())];
        match closing_ticks(paragraph, ticks) {
            Some(end) => {
                out.extend(after[..end].chars().filter(|&c| c == '\n'));
                rest = &after[end + ticks..];
            }
            None => {
                out.push_str(&rest[start..start + ticks]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Where in `text` the first run of exactly `ticks` backticks starts.
fn closing_ticks(text: &str, ticks: usize) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = text[from..].find('`') {
        let at = from + found;
        let run = text[at..].len() - text[at..].trim_start_matches('`').len();
        if run == ticks {
            return Some(at);
        }
        from = at + run;
    }
    None
}

/// The targets of the page's inline links and images, `[text](target)`, with their line
/// numbers. Code is not prose: links in code blocks and code spans are left out.
fn links(text: &str) -> Vec<(usize, String)> {
    let prose = without_code_spans(&without_code_blocks(text));
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = prose[from..].find("](") {
        let start = from + at + 2;
        let end = prose[start..]
            .find(')')
            .map_or(prose.len(), |end| start + end);
        let target = prose[start..end].split_whitespace().next().unwrap_or("");
        let line = prose[..start].matches('\n').count() + 1;
        found.push((line, target.to_owned()));
        from = end;
    }
    found
}

/// GitHub's anchors for the page's headings: the heading's text lowercased, letters, digits,
/// `-` and `_` kept, each space a `-`, anything else (backticks, parentheses, dots…) dropped; a
/// repeated anchor gets `-1`, `-2`, … in order.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for line in without_code_blocks(text).lines() {
        let level = line.len() - line.trim_start_matches('#').len();
        if !(1..=6).contains(&level) {
            continue;
        }
        let Some(title) = line[level..].strip_prefix(' ') else {
            continue;
        };
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let count = seen.entry(slug.clone()).or_insert(0);
        anchors.insert(match *count {
            0 => slug,
            n => format!("{slug}-{n}"),
        });
        *count += 1;
    }
    anchors
}

/// Every relative link of the pages under `root` that reaches no file, or no heading of the
/// page its `#anchor` names, as `page:line: target: why`.
fn broken_links(root: &Path) -> Vec<String> {
    let mut broken = Vec::new();
    for page in pages(root) {
        let text = fs::read_to_string(&page).unwrap();
        let name = page.strip_prefix(root).unwrap().display().to_string();
        for (line, target) in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target.as_str(), ""));
            let file = match path {
                "" => page.clone(),
                path => page.parent().unwrap().join(path),
            };
            let why = if target.is_empty() {
                "an empty link".to_owned()
            } else if !file.exists() {
                format!("no file {}", file.display())
            } else if anchor.is_empty() || file.extension().is_none_or(|ext| ext != "md") {
                continue;
            } else if !anchors(&fs::read_to_string(&file).unwrap()).contains(anchor) {
                format!("no heading with anchor #{anchor} in {}", file.display())
            } else {
                continue;
            };
            broken.push(format!("{name}:{line}: {target}: {why}"));
        }
    }
    broken
}

/// Every run of the binary in a shell block of the pages under `root`: `page:line` and the
/// words after the binary. In a `console` block only the lines after a `$ ` prompt are
/// commands.
fn commands(root: &Path) -> Vec<(String, Vec<String>)> {
    let mut commands = Vec::new();
    for page in pages(root) {
        let text = fs::read_to_string(&page).unwrap();
        let name = page.strip_prefix(root).unwrap().display().to_string();
        for (info, lines) in code_blocks(&text) {
            let language = info.split_whitespace().next().unwrap_or("");
            if !SHELLS.contains(&language) {
                continue;
            }
            for (number, line) in lines {
                let line = line.trim_start();
                let line = match line.strip_prefix("$ ") {
                    Some(command) => command,
                    None if language == "console" => continue,
                    None => line,
                };
                if let Some(args) = INVOCATIONS.iter().find_map(|run| line.strip_prefix(run)) {
                    let words = args.split_whitespace().map(str::to_owned).collect();
                    commands.push((format!("{name}:{number}"), words));
                }
            }
        }
    }
    commands
}

/// `swf-warden WORDS… --help`, as the binary prints it.
fn help(words: &[String]) -> String {
    let out = Command::new(BIN)
        .args(words)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{BIN} {words:?} --help: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The commands a `--help` lists under `Commands:`.
fn commands_listed(help: &str) -> BTreeSet<String> {
    help.lines()
        .skip_while(|line| line.trim() != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Every command in the docs under `root` whose first word is no command (or option) of the
/// binary's usage, or whose second word is no command of that command's own usage, where it
/// has commands (`audit`, `policy`).
fn unknown_commands(root: &Path) -> Vec<String> {
    let mut usage: BTreeMap<Vec<String>, String> = BTreeMap::new();
    let mut usage_of = |words: &[String]| -> String {
        usage
            .entry(words.to_vec())
            .or_insert_with(|| help(words))
            .clone()
    };
    let top = usage_of(&[]);
    let mut unknown = Vec::new();
    for (place, words) in commands(root) {
        let Some(first) = words.first() else {
            continue;
        };
        if first.starts_with('-') {
            let option = first.split('=').next().unwrap();
            if !top.contains(option) {
                unknown.push(format!(
                    "{place}: option {option} is not in swf-warden's usage"
                ));
            }
            continue;
        }
        if !commands_listed(&top).contains(first) {
            unknown.push(format!(
                "{place}: `{first}` is not a command of swf-warden's usage"
            ));
            continue;
        }
        let inner = commands_listed(&usage_of(&words[..1]));
        if let Some(second) = words.get(1) {
            if !second.starts_with('-') && !inner.is_empty() && !inner.contains(second) {
                unknown.push(format!(
                    "{place}: `{second}` is not a command of `swf-warden {first}`"
                ));
            }
        }
    }
    unknown
}

#[test]
fn every_link_reaches_its_file_and_heading() {
    let broken = broken_links(&repo());
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_command_in_the_docs_is_one_the_binary_has() {
    let root = repo();
    assert!(
        !commands(&root).is_empty(),
        "no swf-warden command found in the docs' shell blocks"
    );
    let unknown = unknown_commands(&root);
    assert!(
        unknown.is_empty(),
        "unknown commands:\n{}",
        unknown.join("\n")
    );
}

#[test]
fn the_readme_is_a_short_front_door() {
    let root = repo();
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= README_LINES,
        "README.md has {lines} lines, at most {README_LINES}: move sections to docs/"
    );
    let shell: Vec<&str> = code_blocks(&readme)
        .into_iter()
        .filter(|(info, _)| SHELLS.contains(&info.as_str()))
        .flat_map(|(_, lines)| lines)
        .map(|(_, line)| line.trim())
        .collect();
    for command in QUICK_START {
        assert!(
            shell.contains(&command),
            "README.md's quick start lost `{command}`"
        );
    }
    let headings = anchors(&readme);
    for heading in ["quick-start", "requirements"] {
        assert!(headings.contains(heading), "README.md has no #{heading}");
    }
    let linked: BTreeSet<String> = links(&readme)
        .into_iter()
        .map(|(_, target)| target.split('#').next().unwrap().to_owned())
        .collect();
    for page in pages(&root).into_iter().skip(1) {
        let page = page.strip_prefix(&root).unwrap().display().to_string();
        assert!(
            linked.contains(&page),
            "README.md's documentation map does not link {page}"
        );
    }
}

/// The checks above can fail: a scratch copy of a README and a page, with one of each mistake
/// beside what is right.
#[test]
fn the_checks_catch_broken_links_and_unknown_commands() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("docs-check");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("docs")).unwrap();
    let readme = [
        "# Scratch",
        "",
        "## Quick start",
        "",
        "[fine](docs/page.md#decisions-inside-responddecisiontaskcompleted),",
        "[the second of two](docs/page.md#shadow-mode-1), [a file](Cargo.toml),",
        "[gone](docs/gone.md), [no such heading](docs/page.md#nowhere),",
        "[here](#quick-start), [not here](#quick-stop), `[code](nowhere.md)`.",
        "",
        "```sh",
        "[in a block](nowhere.md)",
        "cargo run --release -- serve --config x.toml",
        "swf-warden serv --config x.toml",
        "```",
    ];
    let page = [
        "# Page",
        "",
        "## Decisions inside `RespondDecisionTaskCompleted`",
        "",
        "## Shadow mode",
        "",
        "## Shadow mode",
        "",
        "Back to the [README](../README.md#scratch).",
        "",
        "```console",
        "$ swf-warden audit verfy --public-key k1=k1.pub audit.log",
        "$ swf-warden policy diff --config a.toml --against b.toml",
        "$ ./target/release/swf-warden --config x.toml",
        "swf-warden bogus: output, not a command",
        "```",
    ];
    fs::write(root.join("README.md"), readme.join("\n")).unwrap();
    fs::write(root.join("Cargo.toml"), "").unwrap();
    fs::write(root.join("docs/page.md"), page.join("\n")).unwrap();

    let broken = broken_links(&root);
    assert_eq!(broken.len(), 3, "{broken:#?}");
    for (line, target) in [
        (7, "docs/gone.md"),
        (7, "docs/page.md#nowhere"),
        (8, "#quick-stop"),
    ] {
        let expected = format!("README.md:{line}: {target}: ");
        assert!(
            broken.iter().any(|b| b.starts_with(&expected)),
            "{expected} not in {broken:#?}"
        );
    }

    assert_eq!(commands(&root).len(), 5, "{:#?}", commands(&root));
    let unknown = unknown_commands(&root);
    assert_eq!(unknown.len(), 2, "{unknown:#?}");
    assert!(
        unknown[0].starts_with("README.md:13: `serv`"),
        "{unknown:#?}"
    );
    assert!(
        unknown[1].starts_with("docs/page.md:12: `verfy`"),
        "{unknown:#?}"
    );
}
