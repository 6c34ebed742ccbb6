//! Differential tests of a provider against its upstream peer: a table of
//! [`Case`]s, each sent as the same `Mount` request to both, the answers
//! normalised to [`Outcome`]s and judged against the case's [`Expect`].
//! Every deliberate difference is an explicit `Expect` entry (and a row in
//! COMPATIBILITY.md); anything else fails the test with both answers and
//! both providers' logs.

use std::collections::BTreeMap;

use secrets_store_proto::provider::v1alpha1 as pb;
use secrets_store_proto::provider::v1alpha1::csi_driver_provider_client::CsiDriverProviderClient;
use tonic::transport::Channel;

use crate::provider_peer::Peer;

/// A normalised successful answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// `(path, mode, contents)`, in answer order unless [`sorted`](Self::sorted).
    pub files: Vec<(String, i32, Vec<u8>)>,
    /// Object versions by id.
    pub versions: BTreeMap<String, String>,
}

impl Reply {
    /// The mode and contents of the file at `path`.
    #[must_use]
    pub fn file(&self, path: &str) -> Option<(i32, &[u8])> {
        self.files
            .iter()
            .find(|f| f.0 == path)
            .map(|f| (f.1, f.2.as_slice()))
    }

    /// The files ordered by path (for providers whose answer order is not
    /// part of the contract).
    #[must_use]
    pub fn sorted(mut self) -> Self {
        self.files.sort_by(|a, b| a.0.cmp(&b.0));
        self
    }
}

impl From<pb::MountResponse> for Reply {
    fn from(r: pb::MountResponse) -> Self {
        Self {
            files: r
                .files
                .into_iter()
                .map(|f| (f.path, f.mode, f.contents))
                .collect(),
            versions: r
                .object_version
                .into_iter()
                .map(|v| (v.id, v.version))
                .collect(),
        }
    }
}

/// A provider's answer: the reply, or the status code and message.
pub type Outcome = Result<Reply, (tonic::Code, String)>;

/// Sends `req` and normalises the answer.
pub async fn mount(c: &mut CsiDriverProviderClient<Channel>, req: pb::MountRequest) -> Outcome {
    match c.mount(req).await {
        Ok(r) => Ok(r.into_inner().into()),
        Err(s) => Err((s.code(), s.message().to_string())),
    }
}

/// A message expectation.
#[derive(Debug, Clone, Copy)]
pub enum Text {
    /// The whole message.
    Is(&'static str),
    /// A part of the message.
    Has(&'static str),
}

impl Text {
    fn matches(self, message: &str) -> bool {
        match self {
            Self::Is(t) => message == t,
            Self::Has(t) => message.contains(t),
        }
    }
}

/// What a case expects of the two answers. Upstream Go providers answer
/// every failure with `Unknown` (plain Go errors); ours carry a code.
pub enum Expect {
    /// The same answer from both.
    Same,
    /// Both succeed and differ only as `why` says; `align` turns our answer
    /// into upstream's.
    Differs {
        /// The documented difference.
        why: &'static str,
        /// Makes our reply upstream's.
        align: fn(&mut Reply),
    },
    /// Both succeed and agree once `canonical` has removed what differs
    /// from read to read on either side (say a per-request id in a file),
    /// as `why` says.
    Equivalent {
        /// What differs from read to read.
        why: &'static str,
        /// Applied to both replies before they are compared.
        canonical: fn(&mut Reply),
    },
    /// The same files; the object versions (same ids) differ, as `why` says.
    VersionsDiffer {
        /// The documented difference.
        why: &'static str,
    },
    /// Both fail with the same message; ours with `code`, upstream with
    /// `Unknown`.
    SameFailure(tonic::Code),
    /// Both fail, both messages hold every `substance` text; ours with
    /// `code`, upstream with `Unknown`.
    BothFail {
        /// Our code.
        code: tonic::Code,
        /// Texts both messages hold.
        substance: Vec<String>,
    },
    /// Both fail with different messages, as `why` says.
    FailDiffers {
        /// The documented difference.
        why: &'static str,
        /// Our code.
        code: tonic::Code,
        /// Our message.
        ours: Text,
        /// Upstream's message.
        upstream: Text,
    },
    /// Only upstream fails, as `why` says; its message holds `substance`.
    OnlyUpstreamFails {
        /// The documented difference.
        why: &'static str,
        /// Text upstream's message holds.
        substance: &'static str,
    },
    /// Only we fail, as `why` says; our message holds `substance`.
    OnlyOursFails {
        /// The documented difference.
        why: &'static str,
        /// Our code.
        code: tonic::Code,
        /// Text our message holds.
        substance: &'static str,
    },
}

impl Expect {
    /// [`Expect::BothFail`] with these texts.
    pub fn both_fail(code: tonic::Code, substance: &[&str]) -> Self {
        Self::BothFail {
            code,
            substance: substance.iter().map(|s| (*s).to_string()).collect(),
        }
    }
}

/// One row of a differential table.
pub struct Case {
    /// Shown on a mismatch.
    pub name: &'static str,
    /// The `objects` attribute (left out when `None`).
    pub objects: Option<String>,
    /// Further attributes (SecretProviderClass parameters); they override
    /// the pod's defaults.
    pub params: Vec<(String, String)>,
    /// The nodePublishSecretRef keys (none: `null`, as the driver sends).
    pub secrets: Vec<(String, String)>,
    /// Attributes left out of the request.
    pub without: Vec<String>,
    /// What the answers must be.
    pub expect: Expect,
}

/// A case with only objects.
pub fn case(name: &'static str, objects: impl Into<String>, expect: Expect) -> Case {
    Case {
        name,
        objects: Some(objects.into()),
        params: Vec::new(),
        secrets: Vec::new(),
        without: Vec::new(),
        expect,
    }
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

impl Case {
    /// With these parameters (added to those given before).
    #[must_use]
    pub fn params(mut self, params: &[(&str, &str)]) -> Self {
        self.params.extend(owned(params));
        self
    }

    /// With these nodePublishSecretRef keys.
    #[must_use]
    pub fn secrets(mut self, secrets: &[(&str, &str)]) -> Self {
        self.secrets = owned(secrets);
        self
    }

    /// Without these attributes (`objects` among them leaves it out).
    #[must_use]
    pub fn without(mut self, keys: &[&str]) -> Self {
        self.without.extend(keys.iter().map(|k| (*k).to_string()));
        self
    }

    /// The Mount request: `pod` attributes (pod identity, provider
    /// defaults), the case's parameters over them, then its objects.
    pub fn request(&self, pod: &[(&str, &str)], target_path: &str) -> pb::MountRequest {
        let mut attrs: BTreeMap<&str, &str> = pod.iter().copied().collect();
        attrs.extend(self.params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if let Some(objects) = &self.objects {
            attrs.insert("objects", objects);
        }
        for k in &self.without {
            attrs.remove(k.as_str());
        }
        let secrets = if self.secrets.is_empty() {
            "null".to_string()
        } else {
            let map: BTreeMap<&str, &str> = self
                .secrets
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            serde_json::to_string(&map).unwrap_or_default()
        };
        pb::MountRequest {
            attributes: serde_json::to_string(&attrs).unwrap_or_default(),
            secrets,
            target_path: target_path.into(),
            permission: "420".into(),
            current_object_version: vec![],
        }
    }

    /// Checks the answers; describes the mismatch, if any.
    pub fn judge(&self, ours: Outcome, upstream: Outcome) -> Option<String> {
        use tonic::Code::Unknown;
        let name = self.name;
        match (&self.expect, ours, upstream) {
            (Expect::Same, Ok(o), Ok(u)) if o == u => None,
            (Expect::Differs { why, align }, Ok(mut o), Ok(u)) => {
                if o == u {
                    return Some(format!(
                        "{name}: expected a difference ({why}) but the answers are equal"
                    ));
                }
                align(&mut o);
                (o != u).then(|| {
                    format!("{name}: beyond the expected difference ({why}):\n ours {o:?}\n upstream {u:?}")
                })
            }
            (Expect::Equivalent { why, canonical }, Ok(mut o), Ok(mut u)) => {
                canonical(&mut o);
                canonical(&mut u);
                (o != u)
                    .then(|| format!("{name} (apart from {why}):\n ours {o:?}\n upstream {u:?}"))
            }
            (Expect::VersionsDiffer { why }, Ok(o), Ok(u)) => (o.files != u.files
                || o.versions.keys().ne(u.versions.keys())
                || o.versions == u.versions)
                .then(|| format!("{name} ({why}):\n ours {o:?}\n upstream {u:?}")),
            (Expect::SameFailure(code), Err((oc, om)), Err((uc, um))) => {
                (oc != *code || uc != Unknown || om != um)
                    .then(|| format!("{name}:\n ours {oc:?} {om:?}\n upstream {uc:?} {um:?}"))
            }
            (Expect::BothFail { code, substance }, Err((oc, om)), Err((uc, um))) => {
                let missing: Vec<_> = substance
                    .iter()
                    .filter(|s| !om.contains(s.as_str()) || !um.contains(s.as_str()))
                    .collect();
                (oc != *code || uc != Unknown || !missing.is_empty()).then(|| {
                    format!(
                        "{name}: ours {oc:?} {om:?}, upstream {uc:?} {um:?}; missing {missing:?}"
                    )
                })
            }
            (
                Expect::FailDiffers {
                    why,
                    code,
                    ours,
                    upstream,
                },
                Err((oc, om)),
                Err((_, um)),
            ) => (oc != *code || !ours.matches(&om) || !upstream.matches(&um))
                .then(|| format!("{name} ({why}): ours {oc:?} {om:?}, upstream {um:?}")),
            (Expect::OnlyUpstreamFails { why, substance }, Ok(_), Err((_, um))) => {
                (!um.contains(substance)).then(|| format!("{name} ({why}): upstream said {um:?}"))
            }
            (
                Expect::OnlyOursFails {
                    why,
                    code,
                    substance,
                },
                Err((oc, om)),
                Ok(_),
            ) => (oc != *code || !om.contains(substance))
                .then(|| format!("{name} ({why}): we said {oc:?} {om:?}")),
            (_, o, u) => Some(format!("{name}: unexpected\n ours {o:?}\n upstream {u:?}")),
        }
    }
}

/// Sends every case's request (from `request`) to both peers, normalises
/// each answer with `normalize`, judges it, and fails with every mismatch
/// and both logs.
pub async fn run_table(
    ours: &Peer,
    upstream: &Peer,
    table: &[Case],
    request: impl Fn(&Case) -> pb::MountRequest,
    normalize: fn(Outcome) -> Outcome,
) -> anyhow::Result<()> {
    let (mut u, mut o) = (upstream.client().await?, ours.client().await?);
    let mut failures = Vec::new();
    for case in table {
        let theirs = normalize(mount(&mut u, request(case)).await);
        let mine = normalize(mount(&mut o, request(case)).await);
        failures.extend(case.judge(mine, theirs));
    }
    anyhow::ensure!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}\n--- upstream log:\n{}\n--- our log:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n"),
        upstream.process.log(),
        ours.process.log()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn reply(version: &str) -> Outcome {
        Ok(Reply {
            files: vec![("a".into(), 0o644, b"x".to_vec())],
            versions: BTreeMap::from([("a".to_string(), version.to_string())]),
        })
    }

    fn fail(code: Code, m: &str) -> Outcome {
        Err((code, m.to_string()))
    }

    #[test]
    fn same_needs_equal_answers() {
        let c = case("c", "", Expect::Same);
        assert_eq!(c.judge(reply("1"), reply("1")), None);
        assert!(c.judge(reply("1"), reply("2")).is_some());
        assert!(c.judge(reply("1"), fail(Code::Unknown, "x")).is_some());
    }

    #[test]
    fn versions_differ_needs_the_same_files_and_other_versions() {
        let c = case("c", "", Expect::VersionsDiffer { why: "w" });
        assert_eq!(c.judge(reply("1"), reply("2")), None);
        assert!(c.judge(reply("1"), reply("1")).is_some());
    }

    #[test]
    fn equivalent_compares_what_canonical_leaves() {
        fn no_versions(r: &mut Reply) {
            r.versions.clear();
        }
        let c = case(
            "c",
            "",
            Expect::Equivalent {
                why: "w",
                canonical: no_versions,
            },
        );
        assert_eq!(c.judge(reply("1"), reply("2")), None);
        let other = Ok(Reply {
            files: vec![("b".into(), 0o644, b"x".to_vec())],
            versions: BTreeMap::new(),
        });
        assert!(c.judge(reply("1"), other).is_some());
    }

    #[test]
    fn failures_check_our_code_upstreams_unknown_and_the_messages() {
        let same = case("c", "", Expect::SameFailure(Code::NotFound));
        let (ours, up) = (fail(Code::NotFound, "m"), fail(Code::Unknown, "m"));
        assert_eq!(same.judge(ours.clone(), up.clone()), None);
        assert!(same.judge(fail(Code::Internal, "m"), up.clone()).is_some());
        assert!(same.judge(ours.clone(), fail(Code::Unknown, "n")).is_some());
        let both = case(
            "c",
            "",
            Expect::BothFail {
                code: Code::NotFound,
                substance: vec!["m".into()],
            },
        );
        assert_eq!(both.judge(fail(Code::NotFound, "a m"), up.clone()), None);
        assert!(both.judge(fail(Code::NotFound, "a"), up).is_some());
        let differs = case(
            "c",
            "",
            Expect::FailDiffers {
                why: "w",
                code: Code::NotFound,
                ours: Text::Is("mine"),
                upstream: Text::Has("their"),
            },
        );
        let theirs = fail(Code::Unknown, "theirs");
        assert_eq!(
            differs.judge(fail(Code::NotFound, "mine"), theirs.clone()),
            None
        );
        assert!(
            differs
                .judge(fail(Code::NotFound, "mine!"), theirs)
                .is_some()
        );
    }

    #[test]
    fn requests_layer_pod_params_objects_and_send_null_secrets() {
        let c = case("c", "- objectName: a", Expect::Same)
            .params(&[("region", "r2")])
            .without(&["drop"]);
        let req = c.request(&[("region", "r1"), ("drop", "x"), ("pod", "p")], "/t");
        let attrs: BTreeMap<String, String> = serde_json::from_str(&req.attributes).expect("json");
        assert_eq!(attrs["region"], "r2");
        assert_eq!(attrs["objects"], "- objectName: a");
        assert_eq!(attrs["pod"], "p");
        assert!(!attrs.contains_key("drop"));
        assert_eq!(req.secrets, "null");
        let with = c.secrets(&[("k", "v")]).request(&[], "/t");
        assert_eq!(with.secrets, r#"{"k":"v"}"#);
        let bare = case("c", "x", Expect::Same).without(&["objects"]);
        let attrs: BTreeMap<String, String> =
            serde_json::from_str(&bare.request(&[], "/t").attributes).expect("json");
        assert!(attrs.is_empty());
    }
}
