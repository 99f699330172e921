//! The planning tool's output: one [`Report`] rendered as a table for people or as
//! JSON for scripts. Nothing here computes shares; [`super::plan`] does.

use std::fmt::{self, Write as _};

use serde::Serialize;

use super::continuum::Ketama;
use super::plan::{Change, NodePlan};

/// Everything `corecache-ring plan` prints.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The `--mode` name.
    pub mode: &'static str,
    /// The key hash's name.
    pub hash: &'static str,
    /// One entry per configured node, in order.
    pub nodes: Vec<NodeReport>,
    /// The `--add` or `--remove` asked for, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
}

/// A node's predicted line and, with `--live`, what the node holds.
#[derive(Clone, Debug, Serialize)]
pub struct NodeReport {
    /// The prediction.
    #[serde(flatten)]
    pub plan: NodePlan,
    /// The node's `curr_items`, when asked and it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curr_items: Option<u64>,
    /// `curr_items` over the sum of all answers: the real spread beside `share`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_share: Option<f64>,
    /// Why the node could not be asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_error: Option<String>,
}

impl Report {
    /// A report over node plans, with no live counts and no change.
    pub fn new(ketama: &Ketama, plans: Vec<NodePlan>) -> Report {
        let nodes = plans
            .into_iter()
            .map(|plan| NodeReport {
                plan,
                curr_items: None,
                live_share: None,
                live_error: None,
            })
            .collect();
        Report {
            mode: ketama.mode.name(),
            hash: ketama.hash.name(),
            nodes,
            change: None,
        }
    }

    /// Adds each node's `curr_items` (or the error met asking for it), in node order.
    pub fn with_live(mut self, counts: Vec<Result<u64, String>>) -> Report {
        let total: u64 = counts.iter().flatten().sum();
        for (node, count) in self.nodes.iter_mut().zip(counts) {
            match count {
                Ok(items) => {
                    node.curr_items = Some(items);
                    node.live_share = Some(if total == 0 {
                        0.0
                    } else {
                        items as f64 / total as f64
                    });
                }
                Err(why) => node.live_error = Some(why),
            }
        }
        self
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }

    fn write_nodes(&self, out: &mut String, width: usize) -> fmt::Result {
        let live = self
            .nodes
            .iter()
            .any(|n| n.curr_items.is_some() || n.live_error.is_some());
        write!(
            out,
            "{:width$}  weight  points   share  lost if down",
            "node"
        )?;
        if live {
            out.push_str("  curr_items  live share");
        }
        out.push('\n');
        for node in &self.nodes {
            write_node(out, node, width)?;
        }
        Ok(())
    }
}

fn write_node(out: &mut String, node: &NodeReport, width: usize) -> fmt::Result {
    let plan = &node.plan;
    write!(
        out,
        "{:width$}  {:>6}  {:>6}  {:>6}  {:>12}",
        plan.node,
        plan.weight,
        plan.points,
        percent(plan.share),
        percent(plan.lost_if_down)
    )?;
    if let (Some(items), Some(share)) = (node.curr_items, node.live_share) {
        write!(out, "  {items:>10}  {:>10}", percent(share))?;
    }
    if let Some(why) = &node.live_error {
        write!(out, "  unreachable: {why}")?;
    }
    out.push('\n');
    Ok(())
}

fn write_change(out: &mut String, change: &Change, width: usize) -> fmt::Result {
    let (verb, preposition) = match change.kind {
        "add" => ("adding", "to"),
        _ => ("removing", "from"),
    };
    writeln!(
        out,
        "\n{verb} {} moves {} of keys: {} {preposition} it, {} between the other nodes",
        change.node,
        percent(change.moved),
        percent(change.moved_with_node),
        percent(change.moved_between_others)
    )?;
    writeln!(
        out,
        "{:width$}  share now  share after  moves out  moves in",
        "node"
    )?;
    for node in &change.nodes {
        writeln!(
            out,
            "{:width$}  {:>9}  {:>11}  {:>9}  {:>8}",
            node.node,
            percent(node.share_before),
            percent(node.share_after),
            percent(node.out),
            percent(node.into)
        )?;
    }
    Ok(())
}

/// A share as a percentage with two decimals.
fn percent(share: f64) -> String {
    format!("{:.2}%", share * 100.0)
}

impl fmt::Display for Report {
    /// The table: a heading, one line per node, then the change if one was asked for.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.nodes.iter().map(|n| n.plan.node.len());
        let added = self.change.iter().map(|c| c.node.len());
        let width = names.chain(added).max().unwrap_or(0).max(4);
        let mut out = String::new();
        writeln!(
            out,
            "{} continuum, key hash {}, {} nodes",
            self.mode,
            self.hash,
            self.nodes.len()
        )?;
        self.write_nodes(&mut out, width)?;
        if let Some(change) = &self.change {
            write_change(&mut out, change, width)?;
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{plan, Mode, Node};

    fn report() -> Report {
        let ketama = Ketama::new(Mode::Twemproxy);
        let nodes = vec![Node::new("127.0.0.1", 1), Node::new("127.0.0.1", 2)];
        let mut report = Report::new(&ketama, plan::node_plans(&ketama, &nodes).unwrap());
        report.change = Some(plan::add(&ketama, &nodes, &Node::new("127.0.0.1", 3)).unwrap());
        report.with_live(vec![Ok(30), Err("connection refused".into())])
    }

    #[test]
    fn table_has_a_line_per_node_and_the_change() {
        let table = report().to_string();
        assert!(table.starts_with("twemproxy continuum, key hash fnv1a_64, 2 nodes\n"));
        assert!(table.contains("127.0.0.1:1       1     160"), "{table}");
        assert!(table.contains("100.00%"), "{table}");
        assert!(table.contains("unreachable: connection refused"), "{table}");
        assert!(table.contains("adding 127.0.0.1:3 moves"), "{table}");
    }

    #[test]
    fn json_carries_the_same_numbers() {
        let report = report();
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["mode"], "twemproxy");
        assert_eq!(json["nodes"][0]["points"], 160);
        assert_eq!(json["nodes"][0]["curr_items"], 30);
        assert_eq!(json["nodes"][0]["live_share"], 1.0);
        assert_eq!(json["nodes"][1]["live_error"], "connection refused");
        assert_eq!(json["change"]["kind"], "add");
        let moved = json["change"]["moved"].as_f64().unwrap();
        assert_eq!(moved, report.change.unwrap().moved);
    }
}
