//! `docs/validation.md` cannot rot: every test it names exists (a `#[test]`
//! function of that name in that file), every code `CommitError::code()`
//! returns has a row (read from the text of `process.rs`, so a new code
//! without a row fails here), every variant of the error enums the table
//! indexes has a row, codes are not listed twice, rows without a test say
//! why, and every test of `group_rejections.rs` is indexed.
use std::collections::BTreeSet;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The enums whose every variant must have a row, and where they are defined.
const ENUMS: &[(&str, &str)] = &[
    ("ProtectionError", "mls-nostd/src/messages/authenticated_content.rs"),
    ("SecretTreeError", "mls-nostd/src/secret_tree.rs"),
    ("ReceiveError", "mls-nostd/src/group/receive.rs"),
    ("CreateCommitError", "mls-nostd/src/group/commit.rs"),
    ("JoinError", "mls-nostd/src/group/join.rs"),
    ("WelcomeError", "mls-nostd/src/messages/welcome_secrets.rs"),
    ("TreeValidationError", "mls-nostd/src/ratchet_tree/validate.rs"),
    ("TreeError", "mls-nostd/src/ratchet_tree/tree.rs"),
    ("TreeKemError", "mls-nostd/src/ratchet_tree/treekem.rs"),
    ("KeyPackageError", "mls-nostd/src/key_package.rs"),
];

/// One row of a table: its code, the tests its last column names, and
/// whether it says it is not covered.
#[derive(Debug)]
struct Row {
    line: usize,
    code: String,
    tests: Vec<String>,
    not_covered: bool,
}

/// The spans between backticks of `s`.
fn backticked(s: &str) -> Vec<String> {
    s.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

fn rows() -> Vec<Row> {
    let md = read("docs/validation.md");
    let mut rows = Vec::new();
    for (i, line) in md.lines().enumerate() {
        if !line.starts_with("| `") {
            continue;
        }
        let cells: Vec<&str> = line.trim().trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(cells.len(), 4, "docs/validation.md:{}: expected 4 columns: {line}", i + 1);
        let code = backticked(cells[0]);
        assert_eq!(code.len(), 1, "docs/validation.md:{}: one code per row", i + 1);
        let tests: Vec<String> = backticked(cells[3]).into_iter().filter(|t| t.contains("::")).collect();
        rows.push(Row { line: i + 1, code: code[0].clone(), tests, not_covered: cells[3].contains("**not covered**") });
    }
    assert!(rows.len() > 50, "docs/validation.md: only {} rows found", rows.len());
    rows
}

/// The source file a test reference names: `file::fn` with `file` a stem of
/// `tests/tests/` or `mls-nostd/tests/`, or a path from the repository root.
fn test_source(reference: &str) -> (String, String) {
    let (file, func) = reference.rsplit_once("::").unwrap_or_else(|| panic!("not file::fn: {reference}"));
    let candidates = if file.contains('/') {
        vec![file.to_string()]
    } else {
        vec![format!("tests/tests/{file}.rs"), format!("mls-nostd/tests/{file}.rs")]
    };
    let path = candidates
        .iter()
        .find(|c| root().join(c).is_file())
        .unwrap_or_else(|| panic!("{reference}: no file {}", candidates.join(" or ")));
    (read(path), func.to_string())
}

/// True if `src` has a `#[test]` function `func` (attributes and doc
/// comments may stand between the two).
fn has_test(src: &str, func: &str) -> bool {
    let needle = format!("fn {func}(");
    src.match_indices(&needle).any(|(at, _)| {
        let before = &src[..at];
        before.rfind("#[test]").is_some_and(|t| !before[t..].contains("fn ") && !before[t..].contains('}'))
    })
}

/// The codes `CommitError::code()` returns, from the source text.
fn commit_codes() -> Vec<String> {
    let src = read("mls-nostd/src/group/process.rs");
    let start = src.find("pub fn code(&self)").expect("CommitError::code in process.rs");
    let body = &src[start..];
    let end = body.find("\n    }\n").expect("end of CommitError::code");
    let codes: Vec<String> = body[..end]
        .lines()
        .filter_map(|l| l.split("=> \"").nth(1))
        .map(|rest| rest.split('"').next().unwrap_or_default().to_string())
        .collect();
    assert!(codes.len() > 20, "only {} codes read from CommitError::code", codes.len());
    codes
}

/// The variant names of `pub enum name` in `file`.
fn variants(name: &str, file: &str) -> Vec<String> {
    let src = read(file);
    let start = src.find(&format!("pub enum {name} {{")).unwrap_or_else(|| panic!("no enum {name} in {file}"));
    let body = &src[start..];
    let end = body.find("\n}").expect("end of enum");
    body[..end]
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("    ") && l.chars().nth(4).is_some_and(|c| c.is_ascii_uppercase()))
        .map(|l| l[4..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect())
        .collect()
}

#[test]
fn every_named_test_exists() {
    let mut missing = Vec::new();
    for row in rows() {
        if row.tests.is_empty() && !row.not_covered {
            missing.push(format!("docs/validation.md:{}: {} names no test and does not say why", row.line, row.code));
        }
        for t in &row.tests {
            let (src, func) = test_source(t);
            if !has_test(&src, &func) {
                missing.push(format!("docs/validation.md:{}: {}: no #[test] fn {t}", row.line, row.code));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn every_commit_error_code_has_a_row() {
    let listed: BTreeSet<String> = rows().into_iter().map(|r| r.code).collect();
    let missing: Vec<String> = commit_codes().into_iter().filter(|c| !listed.contains(c)).collect();
    assert!(missing.is_empty(), "CommitError codes without a row in docs/validation.md: {missing:?}");
}

#[test]
fn every_error_variant_has_a_row() {
    let listed: BTreeSet<String> = rows().into_iter().map(|r| r.code).collect();
    let mut missing = Vec::new();
    for (name, file) in ENUMS {
        let vs = variants(name, file);
        assert!(!vs.is_empty(), "no variants read for {name}");
        missing.extend(vs.into_iter().map(|v| format!("{name}::{v}")).filter(|c| !listed.contains(c)));
    }
    assert!(missing.is_empty(), "variants without a row in docs/validation.md: {missing:?}");
}

#[test]
fn codes_are_listed_once_and_all_exist() {
    let rows = rows();
    let mut seen = BTreeSet::new();
    let codes: BTreeSet<String> = commit_codes().into_iter().collect();
    let mut known: BTreeSet<String> = BTreeSet::new();
    for (name, file) in ENUMS {
        known.extend(variants(name, file).into_iter().map(|v| format!("{name}::{v}")));
    }
    for r in &rows {
        assert!(seen.insert(r.code.clone()), "docs/validation.md:{}: {} listed twice", r.line, r.code);
        assert!(
            codes.contains(&r.code) || known.contains(&r.code),
            "docs/validation.md:{}: {} is neither a CommitError code nor a variant of the indexed enums",
            r.line,
            r.code
        );
    }
    let uncovered: Vec<&str> = rows.iter().filter(|r| r.tests.is_empty()).map(|r| r.code.as_str()).collect();
    println!("{} rows, {} without a test: {uncovered:?}", rows.len(), uncovered.len());
}

#[test]
fn every_rejection_test_is_indexed() {
    let named: BTreeSet<String> = rows().into_iter().flat_map(|r| r.tests).collect();
    let src = read("tests/tests/group_rejections.rs");
    let tests: Vec<String> = src
        .split("#[test]")
        .skip(1)
        .filter_map(|s| s.split("fn ").nth(1))
        .map(|s| s.split('(').next().unwrap_or_default().to_string())
        .collect();
    assert!(tests.len() > 40, "only {} tests read from group_rejections.rs", tests.len());
    let unindexed: Vec<&String> = tests.iter().filter(|t| !named.contains(&format!("group_rejections::{t}"))).collect();
    assert!(unindexed.is_empty(), "tests of group_rejections.rs not in docs/validation.md: {unindexed:?}");
}
