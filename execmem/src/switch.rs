//! A feature that is off unless the configuration or the environment turns
//! it on: the perf map, GDB's JIT interface and the jitdump file all follow
//! the same rule, so it is written once here.

use std::ffi::OsStr;

/// Whether an optional announcement of published code is made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Switch {
    /// On exactly when the feature's environment variable is `1`.
    #[default]
    Environment,
    /// Always on.
    Enabled,
    /// Always off.
    Disabled,
}

impl Switch {
    /// Resolves the setting against the process environment's `variable`.
    #[must_use]
    pub fn is_enabled(self, variable: &str) -> bool {
        self.resolve(std::env::var_os(variable).as_deref())
    }

    /// Resolves the setting against a given value of its variable.
    pub(crate) fn resolve(self, env: Option<&OsStr>) -> bool {
        match self {
            Self::Enabled => true,
            Self::Disabled => false,
            Self::Environment => env == Some(OsStr::new("1")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_setting_follows_the_variable() {
        assert!(Switch::Environment.resolve(Some(OsStr::new("1"))));
        assert!(!Switch::Environment.resolve(Some(OsStr::new("0"))));
        assert!(!Switch::Environment.resolve(Some(OsStr::new(""))));
        assert!(!Switch::Environment.resolve(None));
        assert!(Switch::Enabled.resolve(None));
        assert!(!Switch::Disabled.resolve(Some(OsStr::new("1"))));
    }
}
