//! Names (placeholder until the real module lands).
/// A machine's name.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct MachineName(String);
impl std::fmt::Display for MachineName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
impl std::str::FromStr for MachineName {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(MachineName(s.into()))
    }
}
