//! Wire compatibility with upstream, proven from the upstream `.proto` files.
//!
//! The upstream files are fetched at test time as Go modules (nothing from
//! them is committed): the CSI spec v1.12.0 and the secrets-store-csi-driver
//! v1.6.0. Both sides are compiled with protox and compared descriptor by
//! descriptor: services, RPC paths and streaming, messages, field names,
//! numbers, types, labels, oneofs, enums and extensions.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorSet,
    ServiceDescriptorProto,
};
use secrets_store_testkit::tools::go_module_dir;

/// Every named definition of one protobuf package, by fully qualified name.
#[derive(Default)]
struct Index {
    messages: BTreeMap<String, DescriptorProto>,
    enums: BTreeMap<String, EnumDescriptorProto>,
    services: BTreeMap<String, ServiceDescriptorProto>,
    extensions: BTreeMap<String, FieldDescriptorProto>,
}

impl Index {
    fn of(set: &FileDescriptorSet, package: &str) -> Self {
        let mut idx = Index::default();
        for file in set.file.iter().filter(|f| f.package() == package) {
            let prefix = format!(".{package}");
            for m in &file.message_type {
                idx.add_message(&prefix, m);
            }
            for e in &file.enum_type {
                idx.enums
                    .insert(format!("{prefix}.{}", e.name()), e.clone());
            }
            for s in &file.service {
                idx.services
                    .insert(format!("{prefix}.{}", s.name()), s.clone());
            }
            for x in &file.extension {
                idx.extensions
                    .insert(format!("{prefix}.{}", x.name()), x.clone());
            }
        }
        idx
    }

    fn add_message(&mut self, prefix: &str, m: &DescriptorProto) {
        let name = format!("{prefix}.{}", m.name());
        for n in &m.nested_type {
            self.add_message(&name, n);
        }
        for e in &m.enum_type {
            self.enums.insert(format!("{name}.{}", e.name()), e.clone());
        }
        self.messages.insert(name, m.clone());
    }

    /// Message and enum names reachable from the given types through fields.
    fn closure(&self, roots: impl IntoIterator<Item = String>) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = roots.into_iter().collect();
        while let Some(name) = todo.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some(m) = self.messages.get(&name) {
                for f in &m.field {
                    if !f.type_name().is_empty() {
                        todo.push(f.type_name().to_string());
                    }
                }
                for n in &m.nested_type {
                    todo.push(format!("{name}.{}", n.name()));
                }
            }
        }
        seen
    }
}

/// A comparable summary of a field: everything that matters on the wire and
/// in generated code.
fn field_shape(m: &DescriptorProto, f: &FieldDescriptorProto) -> String {
    let oneof = f
        .oneof_index
        .and_then(|i| m.oneof_decl.get(i as usize))
        .map(|o| o.name().to_string());
    format!(
        "{} = {} label={:?} type={:?} type_name={} oneof={:?} proto3_optional={}",
        f.name(),
        f.number(),
        f.label(),
        f.r#type(),
        f.type_name(),
        oneof,
        f.proto3_optional()
    )
}

fn compare_message(
    name: &str,
    ours: &DescriptorProto,
    theirs: &DescriptorProto,
    diffs: &mut Vec<String>,
) {
    let shapes = |m: &DescriptorProto| -> BTreeMap<i32, String> {
        m.field
            .iter()
            .map(|f| (f.number(), field_shape(m, f)))
            .collect()
    };
    let (a, b) = (shapes(ours), shapes(theirs));
    for (n, s) in &b {
        match a.get(n) {
            None => diffs.push(format!("{name}: field #{n} missing (upstream: {s})")),
            Some(o) if o != s => diffs.push(format!(
                "{name}: field #{n} differs\n  ours:     {o}\n  upstream: {s}"
            )),
            _ => {}
        }
    }
    for (n, s) in &a {
        if !b.contains_key(n) {
            diffs.push(format!("{name}: field #{n} not in upstream ({s})"));
        }
    }
    let is_map = |m: &DescriptorProto| {
        m.options
            .as_ref()
            .and_then(|o| o.map_entry)
            .unwrap_or(false)
    };
    if is_map(ours) != is_map(theirs) {
        diffs.push(format!("{name}: map_entry differs"));
    }
}

fn compare_enum(
    name: &str,
    ours: &EnumDescriptorProto,
    theirs: &EnumDescriptorProto,
    diffs: &mut Vec<String>,
) {
    let values = |e: &EnumDescriptorProto| -> BTreeMap<i32, String> {
        e.value
            .iter()
            .map(|v| (v.number(), v.name().to_string()))
            .collect()
    };
    if values(ours) != values(theirs) {
        diffs.push(format!(
            "{name}: enum values differ\n  ours:     {:?}\n  upstream: {:?}",
            values(ours),
            values(theirs)
        ));
    }
}

fn compare_service(
    name: &str,
    ours: &ServiceDescriptorProto,
    theirs: &ServiceDescriptorProto,
    partial: bool,
    diffs: &mut Vec<String>,
) {
    let methods = |s: &ServiceDescriptorProto| -> BTreeMap<String, String> {
        s.method
            .iter()
            .map(|m| {
                (
                    // The gRPC path kubelet and the driver call.
                    format!("/{}/{}", name.trim_start_matches('.'), m.name()),
                    format!(
                        "{} -> {} client_streaming={} server_streaming={}",
                        m.input_type(),
                        m.output_type(),
                        m.client_streaming(),
                        m.server_streaming()
                    ),
                )
            })
            .collect()
    };
    let (a, mut b) = (methods(ours), methods(theirs));
    if partial {
        // Serving a subset is fine; each RPC we serve must be upstream's.
        b.retain(|path, _| a.contains_key(path));
    }
    if a != b {
        diffs.push(format!(
            "{name}: RPCs differ\n  ours:     {a:#?}\n  upstream: {b:#?}"
        ));
    }
}

/// Compares the named definitions of `ours` with the same names upstream.
/// `required` lists upstream names ours must define; services in `partial`
/// may serve a subset of upstream's RPCs.
fn compare(
    ours: &Index,
    theirs: &Index,
    required: &BTreeSet<String>,
    partial: &[&str],
) -> Vec<String> {
    let mut diffs = Vec::new();
    for name in required {
        let defined = ours.messages.contains_key(name)
            || ours.enums.contains_key(name)
            || ours.services.contains_key(name);
        if !defined {
            diffs.push(format!("{name}: defined upstream, missing in ours"));
        }
    }
    for (name, m) in &ours.messages {
        match theirs.messages.get(name) {
            Some(t) => compare_message(name, m, t, &mut diffs),
            None => diffs.push(format!("{name}: message not defined upstream")),
        }
    }
    for (name, e) in &ours.enums {
        match theirs.enums.get(name) {
            Some(t) => compare_enum(name, e, t, &mut diffs),
            None => diffs.push(format!("{name}: enum not defined upstream")),
        }
    }
    for (name, s) in &ours.services {
        match theirs.services.get(name) {
            Some(t) => compare_service(name, s, t, partial.contains(&name.as_str()), &mut diffs),
            None => diffs.push(format!("{name}: service not defined upstream")),
        }
    }
    for (name, x) in &ours.extensions {
        match theirs.extensions.get(name) {
            Some(t)
                if t.number() == x.number()
                    && t.extendee() == x.extendee()
                    && t.r#type() == x.r#type() => {}
            Some(t) => diffs.push(format!(
                "{name}: extension differs: ours {x:?}, upstream {t:?}"
            )),
            None => diffs.push(format!("{name}: extension not defined upstream")),
        }
    }
    diffs
}

fn compile(file: &str, include: &Path) -> anyhow::Result<FileDescriptorSet> {
    protox::compile([file], [include])
        .map_err(|e| anyhow::anyhow!("compiling {file} in {}: {e:?}", include.display()))
}

fn ours() -> &'static Path {
    Path::new(secrets_store_proto::PROTO_DIR)
}

fn assert_no_diffs(what: &str, diffs: Vec<String>) {
    assert!(
        diffs.is_empty(),
        "{what} differs from upstream:\n{}",
        diffs.join("\n")
    );
}

#[test]
fn csi_identity_and_node_match_csi_spec_v1_12_0() -> anyhow::Result<()> {
    let upstream = go_module_dir("github.com/container-storage-interface/spec", "v1.12.0")?;
    let theirs = Index::of(&compile("csi.proto", &upstream)?, "csi.v1");
    let ours = Index::of(&compile("csi.proto", ours())?, "csi.v1");

    let services = [".csi.v1.Controller", ".csi.v1.Identity", ".csi.v1.Node"];
    let mut required: BTreeSet<String> = services.iter().map(|s| s.to_string()).collect();
    // Every message of every Identity and Node RPC, and of the one
    // Controller RPC we serve.
    let roots: Vec<String> = services
        .iter()
        .flat_map(|s| theirs.services[*s].method.iter().map(move |m| (*s, m)))
        .filter(|(s, m)| *s != ".csi.v1.Controller" || m.name() == "ControllerGetCapabilities")
        .flat_map(|(_, m)| [m.input_type().to_string(), m.output_type().to_string()])
        .collect();
    required.extend(
        theirs
            .closure(roots)
            .into_iter()
            .filter(|n| n.starts_with(".csi.v1.")),
    );
    assert!(required.len() > 30, "closure too small: {required:?}");
    assert_eq!(
        ours.services.keys().cloned().collect::<Vec<_>>(),
        services,
        "we define Identity, Node and ControllerGetCapabilities"
    );
    assert_eq!(ours.services[".csi.v1.Controller"].method.len(), 1);
    assert_no_diffs(
        "csi.proto",
        compare(&ours, &theirs, &required, &[".csi.v1.Controller"]),
    );
    Ok(())
}

#[test]
fn provider_api_matches_secrets_store_csi_driver_v1_6_0() -> anyhow::Result<()> {
    let module = go_module_dir("sigs.k8s.io/secrets-store-csi-driver", "v1.6.0")?;
    let theirs = Index::of(
        &compile("provider/v1alpha1/service.proto", &module)?,
        "v1alpha1",
    );
    let ours = Index::of(&compile("provider.proto", ours())?, "v1alpha1");

    let required: BTreeSet<String> = theirs
        .messages
        .keys()
        .chain(theirs.enums.keys())
        .chain(theirs.services.keys())
        .cloned()
        .collect();
    assert!(required.contains(".v1alpha1.CSIDriverProvider"));
    assert_eq!(
        required.len(),
        8,
        "upstream defines 7 messages and 1 service: {required:?}"
    );
    assert_no_diffs("provider.proto", compare(&ours, &theirs, &required, &[]));
    Ok(())
}

#[test]
fn the_comparison_catches_a_renumbered_field_and_a_renamed_rpc() -> anyhow::Result<()> {
    // The check must be able to fail: mutate our own file and compare.
    let dir: PathBuf = std::env::temp_dir().join(format!("proto-compat-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let src = std::fs::read_to_string(ours().join("provider.proto"))?;
    let mutated = src
        .replace("string target_path = 3;", "string target_path = 6;")
        .replace("rpc Mount(", "rpc MountAll(");
    std::fs::write(dir.join("provider.proto"), mutated)?;
    let good = Index::of(&compile("provider.proto", ours())?, "v1alpha1");
    let bad = Index::of(&compile("provider.proto", &dir)?, "v1alpha1");
    std::fs::remove_dir_all(&dir)?;
    let diffs = compare(&bad, &good, &BTreeSet::new(), &[]);
    assert!(
        diffs
            .iter()
            .any(|d| d.contains(".v1alpha1.MountRequest: field #3 missing")),
        "{diffs:?}"
    );
    assert!(diffs.iter().any(|d| d.contains("RPCs differ")), "{diffs:?}");
    Ok(())
}
