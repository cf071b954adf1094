//! A machine's states, as data: for `--describe`, docs and tools.

use std::fmt::{self, Write};

/// One state of a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateInfo {
    /// The state's name.
    pub name: &'static str,
    /// The enclosing state's name.
    pub parent: Option<&'static str>,
    /// Whether the machine starts here.
    pub initial: bool,
    /// Whether the state has an entry action.
    pub entry: bool,
    /// Whether the state has an exit action.
    pub exit: bool,
    /// The message names the state has receivers for, in declaration order.
    pub receivers: &'static [&'static str],
    /// Whether the state has an empty receiver.
    pub empty_receiver: bool,
}

/// All the states of a machine, in declaration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Description {
    /// The machine's type name.
    pub machine: &'static str,
    /// Its states.
    pub states: &'static [StateInfo],
}

impl Description {
    /// The state called `name`.
    pub fn state(&self, name: &str) -> Option<&StateInfo> {
        self.states.iter().find(|s| s.name == name)
    }

    /// The states directly inside `parent` (top-level states for `None`).
    pub fn children(&self, parent: Option<&str>) -> impl Iterator<Item = &StateInfo> + '_ {
        let parent = parent.map(str::to_owned);
        self.states
            .iter()
            .filter(move |s| s.parent == parent.as_deref())
    }

    /// The states as an indented tree, one per line, with their actions and
    /// receivers.
    pub fn to_text(&self) -> String {
        let mut out = format!("machine {}\n", self.machine);
        self.text_level(None, 1, &mut out);
        out
    }

    fn text_level(&self, parent: Option<&str>, depth: usize, out: &mut String) {
        for state in self.children(parent) {
            let _ = write!(out, "{:width$}{}", "", state.name, width = depth * 2);
            if state.initial {
                out.push_str(" (initial)");
            }
            let mut parts = Vec::new();
            if state.entry {
                parts.push("entry".to_owned());
            }
            if state.exit {
                parts.push("exit".to_owned());
            }
            parts.extend(state.receivers.iter().map(|r| format!("\"{r}\"")));
            if state.empty_receiver {
                parts.push("*".to_owned());
            }
            if !parts.is_empty() {
                let _ = write!(out, ": {}", parts.join(", "));
            }
            out.push('\n');
            self.text_level(Some(state.name), depth + 1, out);
        }
    }

    /// The states as a Graphviz DOT graph: nested states are clusters, the
    /// initial state is marked by an arrow from a point.
    pub fn to_dot(&self) -> String {
        let mut out = format!(
            "digraph \"{}\" {{\n  compound=true;\n  node [shape=box, style=rounded];\n",
            self.machine
        );
        self.dot_level(None, 1, &mut out);
        if let Some(initial) = self.states.iter().find(|s| s.initial) {
            let _ = writeln!(
                out,
                "  __start [shape=point];\n  __start -> \"{}\";",
                initial.name
            );
        }
        out.push_str("}\n");
        out
    }

    fn dot_level(&self, parent: Option<&str>, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        for state in self.children(parent) {
            let label = dot_label(state);
            if self.children(Some(state.name)).next().is_some() {
                let _ = writeln!(out, "{pad}subgraph \"cluster_{}\" {{", state.name);
                let _ = writeln!(out, "{pad}  label=\"{label}\";");
                let _ = writeln!(
                    out,
                    "{pad}  \"{}\" [label=\"{label}\", shape=plaintext];",
                    state.name
                );
                self.dot_level(Some(state.name), depth + 1, out);
                let _ = writeln!(out, "{pad}}}");
            } else {
                let _ = writeln!(out, "{pad}\"{}\" [label=\"{label}\"];", state.name);
            }
        }
    }

    /// The states as a Mermaid `stateDiagram-v2`.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("stateDiagram-v2\n");
        if let Some(initial) = self.states.iter().find(|s| s.initial) {
            let _ = writeln!(out, "  [*] --> {}", initial.name);
        }
        self.mermaid_level(None, 1, &mut out);
        out
    }

    fn mermaid_level(&self, parent: Option<&str>, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        for state in self.children(parent) {
            if self.children(Some(state.name)).next().is_some() {
                let _ = writeln!(out, "{pad}state {} {{", state.name);
                self.mermaid_level(Some(state.name), depth + 1, out);
                let _ = writeln!(out, "{pad}}}");
            } else {
                let _ = writeln!(out, "{pad}{}", state.name);
            }
            for receiver in state.receivers {
                let _ = writeln!(out, "{pad}{} : receives {receiver}", state.name);
            }
        }
    }
}

fn dot_label(state: &StateInfo) -> String {
    let mut label = state.name.to_owned();
    for receiver in state.receivers {
        let _ = write!(label, "\\n{receiver}");
    }
    if state.empty_receiver {
        label.push_str("\\n*");
    }
    label
}

impl fmt::Display for Description {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}
