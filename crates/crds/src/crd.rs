//! CustomResourceDefinitions for the types of this crate, as installed in a
//! cluster and checked in under `deploy/crds/`.
//!
//! Like upstream, the CRDs declare no subresources, printer columns or short
//! names: the driver writes status with a plain update.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionNames, CustomResourceDefinitionSpec,
    CustomResourceDefinitionVersion, CustomResourceValidation, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResourceExt;
use schemars::JsonSchema;

use crate::{GROUP, v1, v1alpha1};

/// Errors while building the CRDs. They only happen if the types of this
/// crate are inconsistent, which the crate's tests rule out.
#[derive(Debug)]
pub struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "building CRD: {}", self.0)
    }
}
impl std::error::Error for Error {}

/// Every CRD of this crate, in a stable order.
pub fn all() -> Result<Vec<CustomResourceDefinition>, Error> {
    Ok(vec![
        secret_provider_class()?,
        secret_provider_class_pod_status()?,
    ])
}

/// The SecretProviderClass CRD: v1 (storage) and v1alpha1 (served, deprecated).
pub fn secret_provider_class() -> Result<CustomResourceDefinition, Error> {
    let mut crd = kube::core::crd::merge_crds(
        vec![
            v1::SecretProviderClass::crd(),
            v1alpha1::SecretProviderClass::crd(),
        ],
        "v1",
    )
    .map_err(|e| Error(e.to_string()))?;
    for v in &mut crd.spec.versions {
        v.subresources = None;
        // kube-derive marks `spec` required and titles the root; upstream
        // requires nothing and lists the standard fields explicitly.
        let derived = v
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.take())
            .ok_or_else(|| Error(format!("version {} has no schema", v.name)))?;
        let props = derived.properties.unwrap_or_default();
        let field = |name: &str| {
            props
                .get(name)
                .cloned()
                .ok_or_else(|| Error(format!("derived schema has no {name}")))
        };
        v.schema = Some(CustomResourceValidation {
            open_api_v3_schema: Some(root_schema(
                "A SecretProviderClass names the provider that fills a CSI volume, its parameters, and the Kubernetes Secrets to sync from it.",
                [("spec", field("spec")?), ("status", field("status")?)],
            )),
        });
    }
    crd.spec.names.list_kind = Some("SecretProviderClassList".into());
    Ok(crd)
}

/// The SecretProviderClassPodStatus CRD: v1 (storage) and v1alpha1 (served,
/// deprecated), both with the same schema: a `status` and no `spec`.
pub fn secret_provider_class_pod_status() -> Result<CustomResourceDefinition, Error> {
    let status: JSONSchemaProps =
        serde_json::to_value(schema_for::<v1::SecretProviderClassPodStatusStatus>())
            .and_then(serde_json::from_value)
            .map_err(|e| Error(e.to_string()))?;
    let schema = root_schema(
        "The mount state of one pod's volume for one SecretProviderClass, written by the driver on the pod's node.",
        [("status", status)],
    );
    let version = |name: &str, storage: bool| CustomResourceDefinitionVersion {
        name: name.into(),
        served: true,
        storage,
        deprecated: (!storage).then_some(true),
        schema: Some(CustomResourceValidation {
            open_api_v3_schema: Some(schema.clone()),
        }),
        ..Default::default()
    };
    Ok(CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(format!("secretproviderclasspodstatuses.{GROUP}")),
            ..Default::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: GROUP.into(),
            names: CustomResourceDefinitionNames {
                kind: "SecretProviderClassPodStatus".into(),
                list_kind: Some("SecretProviderClassPodStatusList".into()),
                plural: "secretproviderclasspodstatuses".into(),
                singular: Some("secretproviderclasspodstatus".into()),
                ..Default::default()
            },
            scope: "Namespaced".into(),
            versions: vec![version("v1", true), version("v1alpha1", false)],
            ..Default::default()
        },
        status: None,
    })
}

/// The top-level schema of an object: the standard `apiVersion`, `kind` and
/// `metadata` fields plus the given ones, none of them required.
fn root_schema<const N: usize>(
    description: &str,
    fields: [(&str, JSONSchemaProps); N],
) -> JSONSchemaProps {
    let string = |d: &str| JSONSchemaProps {
        type_: Some("string".into()),
        description: Some(d.into()),
        ..Default::default()
    };
    let mut properties = std::collections::BTreeMap::from([
        (
            "apiVersion".to_string(),
            string("Versioned schema of this object."),
        ),
        ("kind".to_string(), string("Kind of this object.")),
        (
            "metadata".to_string(),
            JSONSchemaProps {
                type_: Some("object".into()),
                ..Default::default()
            },
        ),
    ]);
    properties.extend(fields.into_iter().map(|(k, v)| (k.to_string(), v)));
    JSONSchemaProps {
        description: Some(description.into()),
        type_: Some("object".into()),
        properties: Some(properties),
        ..Default::default()
    }
}

/// A structural OpenAPI v3 schema for `T`, generated the way kube-derive
/// generates the schemas of derived resources.
fn schema_for<T: JsonSchema>() -> schemars::Schema {
    let mut schema = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(schemars::transform::AddNullable::default())
        .with_transform(kube::core::schema::StructuralSchemaRewriter)
        .into_generator()
        .into_root_schema_for::<T>();
    schema.remove("title");
    schema
}

/// File name of a CRD under `deploy/crds/`, as upstream names its files:
/// `<group>_<plural>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// The YAML document written to `deploy/crds/` for a CRD.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, Error> {
    let body = serde_yaml::to_string(crd).map_err(|e| Error(e.to_string()))?;
    Ok(format!(
        "# Generated by `cargo run -p secrets-store-crds --bin crdgen`; do not edit.\n---\n{body}"
    ))
}
