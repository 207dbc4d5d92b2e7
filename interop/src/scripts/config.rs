//! Reading the interop configs (`FORMAT.md` §1–§2) into typed steps.
//!
//! Keys are matched as the Go runner decodes them: `action` and `actor`
//! exactly, every other key ignoring ASCII case (so `changeCiphersuite` sets
//! `changeCipherSuite`); missing fields take their zero value; a value of
//! the wrong type is an error. One deliberate difference (FORMAT.md §2,
//! branch, **quirk**): the path and tree flags are read under both
//! spellings, `force_path`/`forcePath` and `external_tree`/`externalTree`,
//! so `branch/external_tree` and `branch/force_path` test what their names
//! say instead of repeating `branch/base`.

use super::{Bytes, Extension};
use base64::Engine as _;
use serde_json::{Map, Value};
use std::path::Path;

/// A proposal as a config describes it (`ProposalDescription`), references
/// unresolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposalDescription {
    /// `add`: the KeyPackage stored by step `key_package`.
    Add {
        /// Step index.
        key_package: usize,
    },
    /// `remove`: the actor to remove.
    Remove {
        /// Actor name.
        removed: String,
    },
    /// `externalPSK`: the PSK installed by step `psk_id`.
    ExternalPsk {
        /// Step index.
        psk_id: usize,
    },
    /// `resumptionPSK`: a literal epoch of the current group.
    ResumptionPsk {
        /// Epoch number.
        epoch: u64,
    },
    /// `groupContextExtensions`: the new list.
    GroupContextExtensions {
        /// The extensions.
        extensions: Vec<Extension>,
    },
    /// `reinit`.
    ReInit {
        /// The new group's extensions.
        extensions: Vec<Extension>,
        /// Switch the run's suite first.
        change_cipher_suite: bool,
        /// Append `"++"` to step 0's group ID.
        change_group_id: bool,
    },
}

/// One step of a script (FORMAT.md §2). Fields are the config's keys in
/// snake case; numbers are step indices unless named `epoch`.
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// `createGroup`.
    CreateGroup { actor: String, members: Vec<String> },
    /// `createKeyPackage`.
    CreateKeyPackage { actor: String },
    /// `joinGroup`.
    JoinGroup { actor: String, welcome: usize },
    /// `externalJoin`: `actor` supplies the GroupInfo.
    ExternalJoin {
        actor: String,
        joiner: String,
        members: Vec<String>,
        external_tree: bool,
        remove_prior: bool,
        psks: Vec<usize>,
    },
    /// `installExternalPSK`.
    InstallExternalPsk { clients: Vec<String> },
    /// `groupInfo`.
    GroupInfo { actor: String, external_tree: bool },
    /// A member's proposal (`addProposal`, `removeProposal`,
    /// `externalPSKProposal`, `resumptionPSKProposal`,
    /// `groupContextExtensionsProposal`).
    Proposal { actor: String, description: ProposalDescription },
    /// `updateProposal`.
    UpdateProposal { actor: String },
    /// `fullCommit` (`full`) or `commit`.
    Commit {
        full: bool,
        actor: String,
        by_reference: Vec<usize>,
        by_value: Vec<ProposalDescription>,
        members: Vec<String>,
        joiners: Vec<String>,
        force_path: bool,
        external_tree: bool,
    },
    /// `handleCommit`.
    HandleCommit { actor: String, commit: usize, by_reference: Vec<usize> },
    /// `handlePendingCommit`.
    HandlePendingCommit { actor: String },
    /// `protect`.
    Protect { actor: String, authenticated_data: String, plaintext: String },
    /// `unprotect`.
    Unprotect { actor: String, ciphertext: usize },
    /// `reinit`.
    ReInit {
        /// Empty: the proposal comes from step `external_reinit_proposal`.
        proposer: String,
        external_reinit_proposal: usize,
        committer: String,
        welcomer: String,
        members: Vec<String>,
        change_cipher_suite: bool,
        change_group_id: bool,
        extensions: Vec<Extension>,
        force_path: bool,
        external_tree: bool,
    },
    /// `branch`.
    Branch { actor: String, members: Vec<String>, extensions: Vec<Extension>, force_path: bool, external_tree: bool },
    /// `newMemberAddProposal`.
    NewMemberAddProposal { actor: String, joiner: String },
    /// `addExternalSigner`.
    AddExternalSigner { actor: String, signer: String },
    /// `externalSignerProposal`: `actor` is the signer.
    ExternalSignerProposal { actor: String, member: String, description: ProposalDescription },
}

/// One script of a config.
#[derive(Clone, Debug)]
pub struct Script {
    /// The config file's stem (`commit`, `deep_random`, ...).
    pub config: String,
    /// The script's name in it.
    pub name: String,
    /// Its steps.
    pub steps: Vec<Step>,
    /// Its actors (FORMAT.md §1.2), in order of first appearance.
    pub actors: Vec<String>,
    /// The steps as JSON, for failure reports.
    pub raw: Vec<Value>,
}

impl Script {
    /// `config/name`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.config, self.name)
    }

    /// The index of `actor` in [`Script::actors`].
    pub fn actor_index(&self, actor: &str) -> Option<usize> {
        self.actors.iter().position(|a| a == actor)
    }
}

/// Every script of every `*.json` config in `dir`, sorted by config and
/// script name (Go iterates in random order; a fixed order replays).
pub fn load_dir(dir: &Path) -> Result<Vec<Script>, String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        out.extend(parse_config(&stem, &text).map_err(|e| format!("{}: {e}", f.display()))?);
    }
    Ok(out)
}

/// The scripts of one config file's text.
pub fn parse_config(config: &str, text: &str) -> Result<Vec<Script>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let scripts = field(v.as_object().ok_or("not a JSON object")?, "scripts")
        .and_then(Value::as_object)
        .ok_or("no \"scripts\" object")?;
    let mut names: Vec<&String> = scripts.keys().collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let raw = scripts[name].as_array().ok_or_else(|| format!("{name}: not an array"))?.clone();
        let steps = raw
            .iter()
            .enumerate()
            .map(|(i, s)| parse_step(s).map_err(|e| format!("{name} step {i}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let actors = actors(&steps);
        out.push(Script { config: config.to_string(), name: name.clone(), steps, actors, raw });
    }
    Ok(out)
}

/// The actor set of FORMAT.md §1.2, in order of first appearance.
fn actors(steps: &[Step]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |a: &str| {
        if !a.is_empty() && !out.iter().any(|x| x == a) {
            out.push(a.to_string());
        }
    };
    for s in steps {
        match s {
            Step::CreateGroup { actor, members } => {
                add(actor);
                members.iter().for_each(|m| add(m));
            }
            Step::ExternalJoin { actor, joiner, .. } | Step::NewMemberAddProposal { actor, joiner } => {
                add(actor);
                add(joiner);
            }
            Step::AddExternalSigner { actor, signer } => {
                add(actor);
                add(signer);
            }
            Step::CreateKeyPackage { actor }
            | Step::JoinGroup { actor, .. }
            | Step::GroupInfo { actor, .. }
            | Step::Proposal { actor, .. }
            | Step::UpdateProposal { actor }
            | Step::Commit { actor, .. }
            | Step::HandleCommit { actor, .. }
            | Step::HandlePendingCommit { actor }
            | Step::Protect { actor, .. }
            | Step::Unprotect { actor, .. }
            | Step::Branch { actor, .. }
            | Step::ExternalSignerProposal { actor, .. } => add(actor),
            Step::InstallExternalPsk { .. } | Step::ReInit { .. } => {}
        }
    }
    out
}

/// The value of `key`: an exact match first, else one ignoring ASCII case.
fn field<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    o.get(key).or_else(|| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

fn string(o: &Map<String, Value>, key: &str) -> Result<String, String> {
    match field(o, key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(format!("{key}: not a string: {v}")),
    }
}

/// `actor`, matched exactly as Go does.
fn actor(o: &Map<String, Value>) -> Result<String, String> {
    match o.get("actor") {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(format!("actor: not a string: {v}")),
    }
}

fn uint(o: &Map<String, Value>, key: &str) -> Result<u64, String> {
    match field(o, key) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v.as_u64().ok_or_else(|| format!("{key}: not an unsigned integer: {v}")),
    }
}

fn index(o: &Map<String, Value>, key: &str) -> Result<usize, String> {
    usize::try_from(uint(o, key)?).map_err(|e| format!("{key}: {e}"))
}

fn boolean(o: &Map<String, Value>, keys: &[&str]) -> Result<bool, String> {
    for key in keys {
        match field(o, key) {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => return Ok(*b),
            Some(v) => return Err(format!("{key}: not a boolean: {v}")),
        }
    }
    Ok(false)
}

fn list<T>(o: &Map<String, Value>, key: &str, item: impl Fn(&Value) -> Result<T, String>) -> Result<Vec<T>, String> {
    match field(o, key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(item).collect(),
        Some(v) => Err(format!("{key}: not an array: {v}")),
    }
}

fn names(o: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    list(o, key, |v| v.as_str().map(str::to_string).ok_or_else(|| format!("{key}: not a string: {v}")))
}

fn indices(o: &Map<String, Value>, key: &str) -> Result<Vec<usize>, String> {
    list(o, key, |v| {
        v.as_u64().and_then(|n| usize::try_from(n).ok()).ok_or_else(|| format!("{key}: not an index: {v}"))
    })
}

fn extensions(o: &Map<String, Value>) -> Result<Vec<Extension>, String> {
    list(o, "extensions", |v| {
        let e = v.as_object().ok_or("extension: not an object")?;
        let extension_type = u16::try_from(uint(e, "extension_type")?).map_err(|e| e.to_string())?;
        let data = string(e, "extension_data")?;
        let extension_data = base64::engine::general_purpose::STANDARD
            .decode(data.as_bytes())
            .map_err(|e| format!("extension_data: {e}"))?;
        Ok(Extension { extension_type, extension_data })
    })
}

const FORCE_PATH: &[&str] = &["force_path", "forcePath"];
const EXTERNAL_TREE: &[&str] = &["external_tree", "externalTree"];

fn description(v: &Value) -> Result<ProposalDescription, String> {
    let o = v.as_object().ok_or("proposal description: not an object")?;
    Ok(match string(o, "proposalType")?.as_str() {
        "add" => ProposalDescription::Add { key_package: index(o, "keyPackage")? },
        "remove" => ProposalDescription::Remove { removed: string(o, "removed")? },
        "externalPSK" => ProposalDescription::ExternalPsk { psk_id: index(o, "pskID")? },
        "resumptionPSK" => ProposalDescription::ResumptionPsk { epoch: uint(o, "epochID")? },
        "groupContextExtensions" => ProposalDescription::GroupContextExtensions { extensions: extensions(o)? },
        "reinit" => ProposalDescription::ReInit {
            extensions: extensions(o)?,
            change_cipher_suite: boolean(o, &["changeCipherSuite"])?,
            change_group_id: boolean(o, &["changeGroupID"])?,
        },
        other => return Err(format!("unknown proposal type {other:?}")),
    })
}

fn parse_step(v: &Value) -> Result<Step, String> {
    let o = v.as_object().ok_or("step: not an object")?;
    let action = match o.get("action") {
        Some(Value::String(s)) => s.as_str(),
        _ => return Err("no action".into()),
    };
    let actor = actor(o)?;
    Ok(match action {
        "createGroup" => Step::CreateGroup { actor, members: names(o, "members")? },
        "createKeyPackage" => Step::CreateKeyPackage { actor },
        "joinGroup" => Step::JoinGroup { actor, welcome: index(o, "welcome")? },
        "externalJoin" => Step::ExternalJoin {
            actor,
            joiner: string(o, "joiner")?,
            members: names(o, "members")?,
            external_tree: boolean(o, EXTERNAL_TREE)?,
            remove_prior: boolean(o, &["removePrior"])?,
            psks: indices(o, "psks")?,
        },
        "installExternalPSK" => Step::InstallExternalPsk { clients: names(o, "clients")? },
        "groupInfo" => Step::GroupInfo { actor, external_tree: boolean(o, EXTERNAL_TREE)? },
        "addProposal" => {
            Step::Proposal { actor, description: ProposalDescription::Add { key_package: index(o, "keyPackage")? } }
        }
        "updateProposal" => Step::UpdateProposal { actor },
        "removeProposal" => {
            Step::Proposal { actor, description: ProposalDescription::Remove { removed: string(o, "removed")? } }
        }
        "externalPSKProposal" => {
            Step::Proposal { actor, description: ProposalDescription::ExternalPsk { psk_id: index(o, "pskID")? } }
        }
        "resumptionPSKProposal" => {
            Step::Proposal { actor, description: ProposalDescription::ResumptionPsk { epoch: uint(o, "epochID")? } }
        }
        "groupContextExtensionsProposal" => Step::Proposal {
            actor,
            description: ProposalDescription::GroupContextExtensions { extensions: extensions(o)? },
        },
        "fullCommit" | "commit" => Step::Commit {
            full: action == "fullCommit",
            actor,
            by_reference: indices(o, "byReference")?,
            by_value: list(o, "byValue", description)?,
            members: names(o, "members")?,
            joiners: names(o, "joiners")?,
            force_path: boolean(o, FORCE_PATH)?,
            external_tree: boolean(o, EXTERNAL_TREE)?,
        },
        "handleCommit" => {
            Step::HandleCommit { actor, commit: index(o, "commit")?, by_reference: indices(o, "byReference")? }
        }
        "handlePendingCommit" => Step::HandlePendingCommit { actor },
        "protect" => Step::Protect {
            actor,
            authenticated_data: string(o, "authenticatedData")?,
            plaintext: string(o, "plaintext")?,
        },
        "unprotect" => Step::Unprotect { actor, ciphertext: index(o, "ciphertext")? },
        "reinit" => Step::ReInit {
            proposer: string(o, "proposer")?,
            external_reinit_proposal: index(o, "externalReinitProposal")?,
            committer: string(o, "committer")?,
            welcomer: string(o, "welcomer")?,
            members: names(o, "members")?,
            change_cipher_suite: boolean(o, &["changeCipherSuite"])?,
            change_group_id: boolean(o, &["changeGroupID"])?,
            extensions: extensions(o)?,
            force_path: boolean(o, FORCE_PATH)?,
            external_tree: boolean(o, EXTERNAL_TREE)?,
        },
        "branch" => Step::Branch {
            actor,
            members: names(o, "members")?,
            extensions: extensions(o)?,
            force_path: boolean(o, FORCE_PATH)?,
            external_tree: boolean(o, EXTERNAL_TREE)?,
        },
        "newMemberAddProposal" => Step::NewMemberAddProposal { actor, joiner: string(o, "joiner")? },
        "addExternalSigner" => Step::AddExternalSigner { actor, signer: string(o, "signer")? },
        "externalSignerProposal" => Step::ExternalSignerProposal {
            actor,
            member: string(o, "member")?,
            description: description(field(o, "description").ok_or("no description")?)?,
        },
        other => return Err(format!("unknown action {other:?}")),
    })
}

/// Bytes of a string field, as the runner sends them.
pub fn utf8(s: &str) -> Bytes {
    s.as_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_decoding_rules() {
        let text = r#"{"scripts": {"s": [
            {"action": "createGroup", "actor": "alice", "members": ["bob"]},
            {"action": "reinit", "proposer": "alice", "committer": "bob", "welcomer": "alice",
             "changeCiphersuite": true, "extensions": [{"extension_type": 3, "extension_data": "AAAA"}]},
            {"action": "branch", "actor": "alice", "externalTree": true},
            {"action": "fullCommit", "actor": "alice", "FORCE_PATH": true}
        ]}}"#;
        let s = &parse_config("c", text).expect("parses")[0];
        assert_eq!(s.actors, ["alice", "bob"]);
        let Step::ReInit { change_cipher_suite, extensions, .. } = &s.steps[1] else { panic!("reinit") };
        assert!(*change_cipher_suite);
        assert_eq!(extensions[0].extension_data, [0, 0, 0]);
        assert!(matches!(s.steps[2], Step::Branch { external_tree: true, .. }));
        assert!(matches!(s.steps[3], Step::Commit { force_path: true, full: true, .. }));
        assert!(parse_config("c", r#"{"scripts": {"s": [{"action": "fly"}]}}"#).is_err());
        assert!(parse_config("c", r#"{"scripts": {"s": [{"action": "unprotect", "ciphertext": 1.5}]}}"#).is_err());
    }
}
