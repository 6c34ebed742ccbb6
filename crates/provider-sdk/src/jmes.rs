//! jmesPath extraction: one string value out of a JSON secret per path.

/// jmesPath errors; messages follow the upstream providers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JmesError {
    /// The secret value is not JSON.
    #[error("invalid JSON used with jmesPath in secret: {0}")]
    InvalidJson(String),
    /// The expression does not compile.
    #[error("invalid JMES Path: {0}")]
    InvalidPath(String),
    /// The expression finds nothing.
    #[error("jmes path - {path} for object alias - {alias} does not point to a valid object")]
    NotFound {
        /// The expression.
        path: String,
        /// The file it was meant for.
        alias: String,
    },
    /// The expression finds something that is not a string.
    #[error("invalid JMES search result type for path {0}; only string is allowed")]
    NotString(String),
}

/// A JSON secret, parsed once for several paths.
pub struct JsonSecret {
    data: jmespath::Variable,
    name: String,
}

impl JsonSecret {
    /// Parses `value` (the secret named `name`) as JSON.
    pub fn parse(name: &str, value: &[u8]) -> Result<Self, JmesError> {
        let json: serde_json::Value =
            serde_json::from_slice(value).map_err(|_| JmesError::InvalidJson(name.to_string()))?;
        let data = jmespath::Variable::from_serializable(json)
            .map_err(|_| JmesError::InvalidJson(name.to_string()))?;
        Ok(Self {
            data,
            name: name.to_string(),
        })
    }

    /// The secret's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The string at `path`, destined for the file `alias`.
    pub fn extract(&self, path: &str, alias: &str) -> Result<String, JmesError> {
        let expr = jmespath::compile(path).map_err(|_| JmesError::InvalidPath(path.to_string()))?;
        let found = expr
            .search(&self.data)
            .map_err(|_| JmesError::InvalidPath(path.to_string()))?;
        if found.is_null() {
            return Err(JmesError::NotFound {
                path: path.to_string(),
                alias: alias.to_string(),
            });
        }
        found
            .as_string()
            .cloned()
            .ok_or_else(|| JmesError::NotString(path.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_strings_and_names_errors() {
        let s =
            JsonSecret::parse("db", br#"{"username":"u","nested":{"p":"x"},"n":1}"#).expect("json");
        assert_eq!(s.extract("username", "f").expect("u"), "u");
        assert_eq!(s.extract("nested.p", "f").expect("p"), "x");
        assert_eq!(
            s.extract("missing", "file").expect_err("nf").to_string(),
            "jmes path - missing for object alias - file does not point to a valid object"
        );
        assert_eq!(
            s.extract("n", "f").expect_err("ns").to_string(),
            "invalid JMES search result type for path n; only string is allowed"
        );
        assert_eq!(
            s.extract("[[", "f").expect_err("bad").to_string(),
            "invalid JMES Path: [["
        );
        assert_eq!(
            JsonSecret::parse("db", b"not json")
                .err()
                .map(|e| e.to_string()),
            Some("invalid JSON used with jmesPath in secret: db".to_string())
        );
    }
}
