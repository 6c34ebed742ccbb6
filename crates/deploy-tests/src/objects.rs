//! Rendered Kubernetes objects as JSON values.

use serde::Deserialize;
use serde_json::Value;

/// The objects of a multi-document YAML stream (empty documents skipped).
pub fn parse(yaml: &str) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let value = Value::deserialize(doc)?;
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}

/// `kind` of an object.
pub fn kind(obj: &Value) -> &str {
    obj["kind"].as_str().unwrap_or_default()
}

/// `metadata.name` of an object.
pub fn name(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

/// The object of `kind` named `name`.
pub fn find<'a>(objs: &'a [Value], kind_: &str, name_: &str) -> anyhow::Result<&'a Value> {
    objs.iter()
        .find(|o| kind(o) == kind_ && name(o) == name_)
        .ok_or_else(|| anyhow::anyhow!("no {kind_} {name_} among the rendered objects"))
}

/// The container named `container` in the rendered DaemonSets.
pub fn daemonset_container<'a>(objs: &'a [Value], container: &str) -> anyhow::Result<&'a Value> {
    objs.iter()
        .filter(|o| kind(o) == "DaemonSet")
        .flat_map(|ds| {
            ds["spec"]["template"]["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .find(|c| c["name"] == container)
        .ok_or_else(|| anyhow::anyhow!("no container {container} in the rendered DaemonSets"))
}

/// The `args` of a container, as strings.
pub fn args(container: &Value) -> Vec<String> {
    container["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect()
}
