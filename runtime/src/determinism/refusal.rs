//! The error a client gets when Barista will not put a statement in the log.
//!
//! A refusal happens before the statement is proposed, so nothing was executed anywhere. It names
//! the construct (so the client can find it in its SQL) and says what to write instead (so the
//! client can fix it without reading Barista's documentation first).

/// Barista will not replicate this statement: it could leave the replicas with different data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Barista refuses {construct}: {advice}")]
pub struct Refusal {
    /// What was refused, as the client wrote it where possible: `random()`, `FOR UPDATE SKIP
    /// LOCKED`, `session-level SET`.
    pub construct: String,
    /// Why it cannot be replicated and what to do instead.
    pub advice: String,
    /// The SQLSTATE a client gets: `42601` (syntax error) for a statement Barista could not
    /// parse, `0A000` (feature not supported) for everything refused by the policy.
    pub sqlstate: &'static str,
}

/// SQLSTATE of a refusal by the policy.
pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
/// SQLSTATE of a statement that does not parse.
pub const SYNTAX_ERROR: &str = "42601";

impl Refusal {
    pub(crate) fn new(construct: impl Into<String>, advice: impl Into<String>) -> Self {
        Self { construct: construct.into(), advice: advice.into(), sqlstate: FEATURE_NOT_SUPPORTED }
    }

    /// A statement that does not parse: reported as a syntax error, as PostgreSQL would.
    pub(crate) fn unparsable(advice: impl Into<String>) -> Self {
        Self { sqlstate: SYNTAX_ERROR, ..Self::new("a statement Barista could not parse", advice) }
    }

    /// The same refusal, located inside the body of the function `function`.
    pub(crate) fn in_function_body(self, function: &str) -> Self {
        Self { construct: format!("{} in the body of function {function}", self.construct), ..self }
    }

    /// Barista's own text handling failed an internal consistency check. Refusing is safe (the
    /// statement is not replicated); the message asks for a report because it is a Barista bug.
    pub(crate) fn internal(what: &str) -> Self {
        Self::new(
            "this statement",
            format!(
                "Barista could not {what} (an internal consistency check failed). Please report \
                 the statement to the Barista developers; rephrasing it usually avoids the problem."
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_construct_and_the_advice() {
        let refusal = Refusal::new("random()", "generate the value in the client.");
        assert_eq!(refusal.to_string(), "Barista refuses random(): generate the value in the client.");
        let nested = refusal.in_function_body("f");
        assert_eq!(nested.construct, "random() in the body of function f");
    }
}
