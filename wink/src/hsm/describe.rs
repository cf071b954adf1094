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
    /// The transitions its handlers name (`cx.transition(State::X)` in
    /// their bodies), in declaration order.
    pub transitions: &'static [Transition],
}

/// A transition a handler of a state asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The handler that asks for it.
    pub on: Trigger,
    /// The state it goes to.
    pub to: &'static str,
}

/// Which handler of a state a [`Transition`] is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The receiver of this message.
    Message(&'static str),
    /// The empty receiver (any other message).
    Any,
    /// The entry action.
    Entry,
    /// The exit action.
    Exit,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Message(name) => f.write_str(name),
            Trigger::Any => f.write_str("*"),
            Trigger::Entry => f.write_str("(entry)"),
            Trigger::Exit => f.write_str("(exit)"),
        }
    }
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
        let mut transitions = self.transitions().peekable();
        if transitions.peek().is_some() {
            out.push_str("transitions\n");
            for (from, t) in transitions {
                let _ = writeln!(out, "  {} --{}--> {}", from.name, t.on, t.to);
            }
        }
        out
    }

    /// Every transition, with the state whose handler asks for it.
    pub fn transitions(&self) -> impl Iterator<Item = (&StateInfo, &Transition)> + '_ {
        self.states
            .iter()
            .flat_map(|s| s.transitions.iter().map(move |t| (s, t)))
    }

    /// Whether `state` has states inside it.
    fn is_composite(&self, state: &str) -> bool {
        self.children(Some(state)).next().is_some()
    }

    /// Whether `state` is `ancestor` or lies inside it.
    fn is_within(&self, state: &str, ancestor: &str) -> bool {
        let mut at = Some(state);
        while let Some(name) = at {
            if name == ancestor {
                return true;
            }
            at = self.state(name).and_then(|s| s.parent);
        }
        false
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

    /// The states as a Graphviz DOT graph: nested states are clusters
    /// (each labelled once), the initial state is marked by an arrow from
    /// a point, and each transition is an edge labelled with what asks
    /// for it.
    pub fn to_dot(&self) -> String {
        let mut out = format!(
            "digraph \"{}\" {{\n  compound=true;\n  node [shape=box, style=rounded];\n",
            self.machine
        );
        self.dot_level(None, 1, &mut out);
        if let Some(initial) = self.states.iter().find(|s| s.initial) {
            let _ = writeln!(out, "  __start [shape=point];");
            let _ = writeln!(
                out,
                "  __start -> \"{}\"{};",
                initial.name,
                self.dot_ends(None, initial.name)
            );
        }
        for (from, t) in self.transitions() {
            let ends = self.dot_ends(Some(from.name), t.to);
            let label = format!("label=\"{}\"", t.on.to_string().replace('"', "\\\""));
            let attrs = if ends.is_empty() {
                format!(" [{label}]")
            } else {
                format!("{}, {label}]", &ends[..ends.len() - 1])
            };
            let _ = writeln!(out, "  \"{}\" -> \"{}\"{};", from.name, t.to, attrs);
        }
        out.push_str("}\n");
        out
    }

    /// ` [ltail=…, lhead=…]` for an edge from `from` to `to` when either is
    /// a cluster (an edge ends at a cluster's border, unless the other end
    /// is inside it); empty otherwise.
    fn dot_ends(&self, from: Option<&str>, to: &str) -> String {
        let mut attrs = Vec::new();
        if let Some(from) = from {
            if self.is_composite(from) && !self.is_within(to, from) {
                attrs.push(format!("ltail=\"cluster_{from}\""));
            }
        }
        if self.is_composite(to) && !from.is_some_and(|f| self.is_within(f, to)) {
            attrs.push(format!("lhead=\"cluster_{to}\""));
        }
        if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(", "))
        }
    }

    fn dot_level(&self, parent: Option<&str>, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        for state in self.children(parent) {
            let label = dot_label(state);
            if self.is_composite(state.name) {
                let _ = writeln!(out, "{pad}subgraph \"cluster_{}\" {{", state.name);
                let _ = writeln!(out, "{pad}  label={label};");
                // Where edges to and from the cluster attach: no label of
                // its own (the cluster's is the state's).
                let _ = writeln!(
                    out,
                    "{pad}  \"{}\" [shape=point, style=invis, width=0, height=0, label=\"\"];",
                    state.name
                );
                self.dot_level(Some(state.name), depth + 1, out);
                let _ = writeln!(out, "{pad}}}");
            } else {
                let _ = writeln!(out, "{pad}\"{}\" [label={label}];", state.name);
            }
        }
    }

    /// The states as a Mermaid `stateDiagram-v2`: nested states, the
    /// initial one, each state's actions and receivers as its
    /// description, and each transition labelled with what asks for it.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("stateDiagram-v2\n");
        if let Some(initial) = self.states.iter().find(|s| s.initial) {
            let _ = writeln!(out, "  [*] --> {}", initial.name);
        }
        self.mermaid_level(None, 1, &mut out);
        for (from, t) in self.transitions() {
            let _ = writeln!(out, "  {} --> {} : {}", from.name, t.to, t.on);
        }
        out
    }

    fn mermaid_level(&self, parent: Option<&str>, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        for state in self.children(parent) {
            if self.is_composite(state.name) {
                let _ = writeln!(out, "{pad}state {} {{", state.name);
                self.mermaid_level(Some(state.name), depth + 1, out);
                let _ = writeln!(out, "{pad}}}");
            } else {
                let _ = writeln!(out, "{pad}{}", state.name);
            }
            let parts = parts(state);
            if !parts.is_empty() {
                let _ = writeln!(out, "{pad}{} : {}", state.name, parts.join(" · "));
            }
        }
    }
}

/// A state's actions and receivers, as the diagrams list them.
fn parts(state: &StateInfo) -> Vec<String> {
    let mut parts = Vec::new();
    if state.entry {
        parts.push("entry".to_owned());
    }
    if state.exit {
        parts.push("exit".to_owned());
    }
    parts.extend(state.receivers.iter().map(|r| (*r).to_owned()));
    if state.empty_receiver {
        parts.push("*".to_owned());
    }
    parts
}

/// A state's DOT label: its name, then its actions and receivers on a
/// line of their own, in smaller type (an HTML-like label).
fn dot_label(state: &StateInfo) -> String {
    let parts = parts(state);
    let name = html(state.name);
    if parts.is_empty() {
        return format!("<{name}>");
    }
    let parts: Vec<String> = parts.iter().map(|p| html(p)).collect();
    format!(
        "<{name}<br/><font point-size=\"10\">{}</font>>",
        parts.join(" · ")
    )
}

/// `text` escaped for an HTML-like label.
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl fmt::Display for Description {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}
