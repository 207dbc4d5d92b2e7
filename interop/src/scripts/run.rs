//! One run of one script (FORMAT.md §1.4, §2, §3): a fresh client per
//! actor, an empty cache, and every step in order; the first step that
//! fails ends the run.

use super::config::{ProposalDescription, Script, Step, utf8};
use super::{Bytes, Client, Factory, Failure, Library, OUR_SUITES, Outcome, ProposalSpec, Tx};
use crate::SeededRng;
use std::collections::BTreeMap;

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct RunSpec<'a> {
    /// The script.
    pub script: &'a Script,
    /// The library of each actor, in the order of [`Script::actors`].
    pub assignment: &'a [Library],
    /// The cipher suite the run starts in.
    pub suite: u16,
    /// Handshakes as PrivateMessage (`true`) or PublicMessage.
    pub encrypt: bool,
    /// Seeds the run's randomness (group IDs, PSKs, our keys).
    pub seed: u64,
}

impl RunSpec<'_> {
    /// The assignment as one letter per actor (`o` ours, `O` OpenMLS, `R` mls-rs).
    pub fn assignment_label(&self) -> String {
        self.assignment.iter().map(|l| l.letter()).collect()
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every step succeeded; `checks` comparisons (epoch authenticators,
    /// authenticated data and plaintexts) held.
    Passed {
        /// Comparisons made.
        checks: usize,
    },
    /// A step failed.
    Failed {
        /// The step's index.
        step: usize,
        /// Why.
        error: String,
    },
    /// A library assigned to an actor cannot do what a step needs.
    NotSupported {
        /// The step's index.
        step: usize,
        /// The library.
        library: Library,
        /// What it lacks.
        reason: String,
    },
}

/// Runs `spec` with clients from `factory`. A panic in any library is a
/// failed step.
pub fn run(spec: &RunSpec<'_>, factory: &dyn Factory) -> Verdict {
    let n = spec.script.actors.len();
    let mut r = Runner {
        spec: *spec,
        suite: spec.suite,
        clients: Vec::with_capacity(n),
        state: vec![false; n],
        tx: vec![None; n],
        cache: vec![BTreeMap::new(); spec.script.steps.len()],
        rng: SeededRng(spec.seed),
        checks: 0,
        step: 0,
        last: String::new(),
    };
    for (i, name) in spec.script.actors.iter().enumerate() {
        let seed = spec.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(i as u64);
        r.clients.push(factory.client(spec.assignment[i], name, seed));
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.run_steps()));
    let step = r.step;
    match outcome {
        Ok(Ok(())) => Verdict::Passed { checks: r.checks },
        Ok(Err(Failure::Failed(error))) => Verdict::Failed { step, error: format!("{}: {error}", r.last) },
        Ok(Err(Failure::Unsupported { library, reason })) => Verdict::NotSupported { step, library, reason },
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic".into());
            Verdict::Failed { step, error: format!("{}: panicked: {msg}", r.last) }
        }
    }
}

struct Runner<'a> {
    spec: RunSpec<'a>,
    /// The current suite (a ReInit may change it).
    suite: u16,
    clients: Vec<Box<dyn Client>>,
    /// Whether the actor has a group state (`S(x)`).
    state: Vec<bool>,
    /// The actor's pending KeyPackage (`T(x)`).
    tx: Vec<Option<Tx>>,
    cache: Vec<BTreeMap<&'static str, Bytes>>,
    rng: SeededRng,
    checks: usize,
    step: usize,
    /// The actor (and library) whose client was called last: the one a
    /// failure comes from.
    last: String,
}

fn fail<T>(msg: impl Into<String>) -> Outcome<T> {
    Err(Failure::Failed(msg.into()))
}

impl Runner<'_> {
    fn run_steps(&mut self) -> Outcome<()> {
        let steps = &self.spec.script.steps;
        for (i, step) in steps.iter().enumerate() {
            self.step = i;
            self.run_step(i, step)?;
        }
        Ok(())
    }

    fn idx(&self, name: &str) -> Outcome<usize> {
        match self.spec.script.actor_index(name) {
            Some(i) => Ok(i),
            None => fail(format!("{name:?} is not an actor of the script")),
        }
    }

    fn client(&mut self, name: &str) -> Outcome<&mut dyn Client> {
        let i = self.idx(name)?;
        self.last = format!("{name} ({})", self.spec.assignment[i]);
        Ok(self.clients[i].as_mut())
    }

    /// The client of an actor that must have a group state.
    fn member(&mut self, name: &str) -> Outcome<&mut dyn Client> {
        let i = self.idx(name)?;
        if !self.state[i] {
            return fail(format!("{name} has no group state"));
        }
        self.last = format!("{name} ({})", self.spec.assignment[i]);
        Ok(self.clients[i].as_mut())
    }

    fn set_state(&mut self, name: &str) -> Outcome<()> {
        let i = self.idx(name)?;
        self.state[i] = true;
        Ok(())
    }

    fn tx_of(&self, name: &str) -> Outcome<Tx> {
        match self.tx[self.idx(name)?] {
            Some(t) => Ok(t),
            None => fail(format!("{name} has no KeyPackage (transaction) to join with")),
        }
    }

    /// `cache[step].key`; missing is a failure.
    fn get(&self, step: usize, key: &str) -> Outcome<Bytes> {
        match self.cache.get(step).and_then(|c| c.get(key)) {
            Some(v) => Ok(v.clone()),
            None => fail(format!("step {step} stored no {key}")),
        }
    }

    fn put(&mut self, step: usize, key: &'static str, value: Bytes) {
        self.cache[step].insert(key, value);
    }

    fn proposals(&self, by_reference: &[usize]) -> Outcome<Vec<Bytes>> {
        by_reference.iter().map(|&j| self.get(j, "proposal")).collect()
    }

    /// An epoch-authenticator check (§3): byte equality, and never empty.
    fn agree(&mut self, who: &str, expected: &[u8], got: &[u8]) -> Outcome<()> {
        if expected.is_empty() || got.is_empty() {
            return fail(format!("{who}: an empty epoch authenticator"));
        }
        if expected != got {
            return fail(format!(
                "{who}: epoch authenticator {} differs from {}",
                hex_prefix(got),
                hex_prefix(expected)
            ));
        }
        self.checks += 1;
        Ok(())
    }

    fn random_bytes(&mut self, n: usize) -> Bytes {
        let mut b = vec![0u8; n];
        rand_core::Rng::fill_bytes(&mut self.rng, &mut b);
        b
    }

    /// A fresh random UUID in text form (36 ASCII characters), as a group ID.
    fn uuid(&mut self) -> Bytes {
        let b: [u8; 16] = self.random_bytes(16).try_into().unwrap_or([0; 16]);
        utf8(&uuid::Builder::from_random_bytes(b).into_uuid().hyphenated().to_string())
    }

    /// FORMAT.md §4, suite switch: a suite every assigned library supports,
    /// other than the current one; the first such of [`OUR_SUITES`].
    fn switch_suite(&mut self) -> Outcome<()> {
        let next = OUR_SUITES
            .iter()
            .copied()
            .find(|s| *s != self.suite && self.spec.assignment.iter().all(|l| l.suites().contains(s)));
        match next {
            Some(s) => {
                self.suite = s;
                Ok(())
            }
            None => fail("no other cipher suite that every client supports"),
        }
    }

    /// The group ID of step 0, with `"++"` if `change`.
    fn reinit_group_id(&self, change: bool) -> Outcome<Bytes> {
        let mut id = self.get(0, "group_id")?;
        if change {
            id.extend_from_slice(b"++");
        }
        Ok(id)
    }

    fn resolve(&mut self, d: &ProposalDescription) -> Outcome<ProposalSpec> {
        Ok(match d {
            ProposalDescription::Add { key_package } => ProposalSpec::Add(self.get(*key_package, "key_package")?),
            ProposalDescription::Remove { removed } => ProposalSpec::Remove(utf8(removed)),
            ProposalDescription::ExternalPsk { psk_id } => ProposalSpec::ExternalPsk(self.get(*psk_id, "psk_id")?),
            ProposalDescription::ResumptionPsk { epoch } => ProposalSpec::ResumptionPsk(*epoch),
            ProposalDescription::GroupContextExtensions { extensions } => {
                ProposalSpec::GroupContextExtensions(extensions.clone())
            }
            ProposalDescription::ReInit { extensions, change_cipher_suite, change_group_id } => {
                if *change_cipher_suite {
                    self.switch_suite()?;
                }
                ProposalSpec::ReInit {
                    group_id: self.reinit_group_id(*change_group_id)?,
                    suite: self.suite,
                    extensions: extensions.clone(),
                }
            }
        })
    }

    fn run_step(&mut self, i: usize, step: &Step) -> Outcome<()> {
        let enc = self.spec.encrypt;
        let suite = self.suite;
        match step {
            Step::CreateGroup { actor, members } => {
                let group_id = self.uuid();
                self.put(i, "group_id", group_id.clone());
                self.client(actor)?.create_group(&group_id, suite, enc)?;
                self.set_state(actor)?;
                if members.is_empty() {
                    return Ok(());
                }
                let mut handles = Vec::new();
                let mut adds = Vec::new();
                for m in members {
                    let (tx, kp) = self.client(m)?.create_key_package(suite)?;
                    handles.push(tx);
                    adds.push(ProposalSpec::Add(kp));
                }
                let out = self.member(actor)?.commit(&[], &adds, false, false)?;
                let ea = self.member(actor)?.handle_pending_commit()?;
                for (m, tx) in members.iter().zip(handles) {
                    let got = self.client(m)?.join_group(tx, &out.welcome, enc, None)?;
                    self.agree(m, &ea, &got)?;
                    self.set_state(m)?;
                }
            }
            Step::CreateKeyPackage { actor } => {
                let (tx, kp) = self.client(actor)?.create_key_package(suite)?;
                let a = self.idx(actor)?;
                self.tx[a] = Some(tx);
                self.put(i, "key_package", kp);
            }
            Step::JoinGroup { actor, welcome } => {
                let tx = self.tx_of(actor)?;
                let w = self.get(*welcome, "welcome")?;
                self.client(actor)?.join_group(tx, &w, enc, None)?;
                self.set_state(actor)?;
            }
            Step::ExternalJoin { actor, joiner, members, external_tree, remove_prior, psks } => {
                let (gi, tree) = self.member(actor)?.group_info(*external_tree)?;
                self.put(i, "group_info", gi.clone());
                self.put(i, "ratchet_tree", tree.clone());
                let psks = psks
                    .iter()
                    .map(|&p| Ok((self.get(p, "psk_id")?, self.get(p, "psk_secret")?)))
                    .collect::<Outcome<Vec<_>>>()?;
                let tree = (!tree.is_empty()).then_some(tree.as_slice());
                let (commit, ea) = self.client(joiner)?.external_join(&gi, tree, enc, *remove_prior, &psks)?;
                self.set_state(joiner)?;
                self.put(i, "commit", commit.clone());
                self.put(i, "epoch_authenticator", ea.clone());
                for m in members.iter().chain(std::iter::once(actor)) {
                    let got = self.member(m)?.handle_commit(&[], &commit)?;
                    self.agree(m, &ea, &got)?;
                }
            }
            Step::InstallExternalPsk { clients } => {
                let id = self.random_bytes(32);
                let secret = self.random_bytes(32);
                self.put(i, "psk_id", id.clone());
                self.put(i, "psk_secret", secret.clone());
                for c in clients {
                    let a = self.idx(c)?;
                    self.last = format!("{c} ({})", self.spec.assignment[a]);
                    if !self.state[a] && self.tx[a].is_none() {
                        return fail(format!("{c} has neither a group nor a KeyPackage to hold the PSK"));
                    }
                    self.clients[a].store_psk(&id, &secret)?;
                }
            }
            Step::GroupInfo { actor, external_tree } => {
                let (gi, tree) = self.member(actor)?.group_info(*external_tree)?;
                self.put(i, "group_info", gi);
                self.put(i, "ratchet_tree", tree);
            }
            Step::Proposal { actor, description } => {
                let p = self.resolve(description)?;
                let m = self.member(actor)?.propose(&p)?;
                self.put(i, "proposal", m);
            }
            Step::UpdateProposal { actor } => {
                let m = self.member(actor)?.propose_update()?;
                self.put(i, "proposal", m);
            }
            Step::Commit { full, actor, by_reference, by_value, members, joiners, force_path, external_tree } => {
                let p = self.proposals(by_reference)?;
                let by_value = by_value.iter().map(|d| self.resolve(d)).collect::<Outcome<Vec<_>>>()?;
                let out = self.member(actor)?.commit(&p, &by_value, *force_path, *external_tree)?;
                if !*external_tree && !out.ratchet_tree.is_empty() {
                    return fail(format!("{actor}: a ratchet tree returned though none was asked for"));
                }
                self.put(i, "commit", out.commit.clone());
                self.put(i, "welcome", out.welcome.clone());
                if *external_tree {
                    self.put(i, "ratchet_tree", out.ratchet_tree.clone());
                }
                if !*full {
                    return Ok(());
                }
                let ea = self.member(actor)?.handle_pending_commit()?;
                self.put(i, "epoch_authenticator", ea.clone());
                for m in members {
                    let got = self.member(m)?.handle_commit(&p, &out.commit)?;
                    self.agree(m, &ea, &got)?;
                }
                let tree = external_tree.then_some(out.ratchet_tree.as_slice());
                for j in joiners {
                    let tx = self.tx_of(j)?;
                    let got = self.client(j)?.join_group(tx, &out.welcome, enc, tree)?;
                    self.agree(j, &ea, &got)?;
                    self.set_state(j)?;
                }
            }
            Step::HandleCommit { actor, commit, by_reference } => {
                let p = self.proposals(by_reference)?;
                let c = self.get(*commit, "commit")?;
                self.member(actor)?.handle_commit(&p, &c)?;
            }
            Step::HandlePendingCommit { actor } => {
                self.member(actor)?.handle_pending_commit()?;
            }
            Step::Protect { actor, authenticated_data, plaintext } => {
                let ct = self.member(actor)?.protect(authenticated_data.as_bytes(), plaintext.as_bytes())?;
                self.put(i, "authenticatedData", utf8(authenticated_data));
                self.put(i, "plaintext", utf8(plaintext));
                self.put(i, "ciphertext", ct);
            }
            Step::Unprotect { actor, ciphertext } => {
                let ct = self.get(*ciphertext, "ciphertext")?;
                let (aad, pt) = self.member(actor)?.unprotect(&ct)?;
                if aad != self.get(*ciphertext, "authenticatedData")? {
                    return fail(format!("{actor}: authenticated data {:?} differs", String::from_utf8_lossy(&aad)));
                }
                if pt != self.get(*ciphertext, "plaintext")? {
                    return fail(format!("{actor}: plaintext {:?} differs", String::from_utf8_lossy(&pt)));
                }
                self.checks += 2;
                self.put(i, "authenticatedData", aad);
                self.put(i, "plaintext", pt);
            }
            Step::ReInit {
                proposer,
                external_reinit_proposal,
                committer,
                welcomer,
                members,
                change_cipher_suite,
                change_group_id,
                extensions,
                force_path,
                external_tree,
            } => {
                let with_proposer = (!proposer.is_empty()).then_some(proposer);
                // NC: who processes the ReInit Commit; NW: who joins the new group.
                let others: Vec<&String> =
                    std::iter::once(welcomer).chain(members).chain(with_proposer).chain(std::iter::once(committer)).collect();
                let nc = dedup(others.iter().copied().filter(|a| *a != committer));
                let nw = dedup(others.iter().copied().filter(|a| *a != welcomer));
                let r = match with_proposer {
                    Some(p) => {
                        let group_id = self.reinit_group_id(*change_group_id)?;
                        if *change_cipher_suite {
                            self.switch_suite()?;
                        }
                        let spec = ProposalSpec::ReInit { group_id, suite: self.suite, extensions: extensions.clone() };
                        self.member(p)?.propose(&spec)?
                    }
                    None => self.get(*external_reinit_proposal, "proposal")?,
                };
                let rs = [r];
                let commit = self.member(committer)?.reinit_commit(&rs)?;
                let (committer_kp, ea) = self.member(committer)?.handle_pending_reinit_commit()?;
                let mut kps: BTreeMap<&str, Bytes> = BTreeMap::new();
                kps.insert(committer.as_str(), committer_kp);
                for m in &nc {
                    let (kp, got) = self.member(m)?.handle_reinit_commit(&rs, &commit)?;
                    self.agree(m, &ea, &got)?;
                    kps.insert(m.as_str(), kp);
                }
                let new_kps = nw
                    .iter()
                    .map(|m| match kps.get(m.as_str()) {
                        Some(kp) => Ok(kp.clone()),
                        None => fail(format!("{m} has no KeyPackage for the new group")),
                    })
                    .collect::<Outcome<Vec<_>>>()?;
                let w = self.member(welcomer)?.reinit_welcome(&new_kps, *force_path, *external_tree)?;
                let tree = external_tree.then_some(w.ratchet_tree.as_slice());
                for m in &nw {
                    let got = self.member(m)?.handle_reinit_welcome(&w.welcome, tree)?;
                    self.agree(m, &w.epoch_authenticator, &got)?;
                }
            }
            Step::Branch { actor, members, extensions, force_path, external_tree } => {
                let mut handles = Vec::new();
                let mut kps = Vec::new();
                for m in members {
                    let (tx, kp) = self.client(m)?.create_key_package(suite)?;
                    handles.push(tx);
                    kps.push(kp);
                }
                let group_id = self.uuid();
                let w = self.member(actor)?.create_branch(&group_id, extensions, &kps, *force_path, *external_tree)?;
                let tree = external_tree.then_some(w.ratchet_tree.as_slice());
                for (m, tx) in members.iter().zip(handles) {
                    let got = self.member(m)?.handle_branch(tx, &w.welcome, tree)?;
                    self.agree(m, &w.epoch_authenticator, &got)?;
                }
            }
            Step::NewMemberAddProposal { actor, joiner } => {
                let (gi, _) = self.member(actor)?.group_info(false)?;
                let (tx, proposal) = self.client(joiner)?.new_member_add_proposal(&gi)?;
                let j = self.idx(joiner)?;
                self.tx[j] = Some(tx);
                self.put(i, "proposal", proposal);
            }
            Step::AddExternalSigner { actor, signer } => {
                let sender = self.client(signer)?.create_external_signer(suite)?;
                let proposal = self.member(actor)?.add_external_signer(&sender)?;
                self.put(i, "proposal", proposal);
            }
            Step::ExternalSignerProposal { actor, member, description } => {
                let (gi, tree) = self.member(member)?.group_info(true)?;
                let p = self.resolve(description)?;
                let proposal = self.client(actor)?.external_signer_proposal(&gi, &tree, &p)?;
                self.put(i, "proposal", proposal);
            }
        }
        Ok(())
    }
}

fn dedup<'a>(names: impl Iterator<Item = &'a String>) -> Vec<&'a String> {
    let mut out: Vec<&String> = Vec::new();
    for n in names {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

fn hex_prefix(b: &[u8]) -> String {
    b.iter().take(8).map(|x| format!("{x:02x}")).collect::<String>() + "…"
}
