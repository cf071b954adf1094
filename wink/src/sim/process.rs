//! A machine's node, behind a trait object, so one simulation runs
//! machines of many types.

use std::time::Instant;

use crate::address::Address;
use crate::hsm::Machine;
use crate::node::{Ending, Node, NodeStats, Notice, Transmit};
use crate::transport::TransportEvent;

/// What the simulator needs of a [`Node`], whatever its machine type.
pub trait SimNode {
    /// [`Node::start`].
    fn start(&mut self, now: Instant);
    /// [`Node::handle_message`].
    fn handle_message(&mut self, now: Instant, from: Address, text: &str);
    /// [`Node::handle_timeout`].
    fn handle_timeout(&mut self, now: Instant);
    /// [`Node::handle_event`].
    fn handle_event(&mut self, now: Instant, event: &TransportEvent);
    /// [`Node::handle_heard`].
    fn handle_heard(&mut self, at: Instant);
    /// [`Node::stop`].
    fn stop(&mut self, now: Instant);
    /// [`Node::poll_timeout`].
    fn poll_timeout(&self) -> Option<Instant>;
    /// [`Node::poll_transmit`].
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// [`Node::poll_notice`].
    fn poll_notice(&mut self) -> Option<Notice>;
    /// [`Node::is_finished`].
    fn is_finished(&self) -> bool;
    /// [`Node::ending`].
    fn ending(&self) -> Option<&Ending>;
    /// The addresses of its children.
    fn children(&self) -> Vec<Address>;
    /// [`Node::table_sizes`].
    fn table_sizes(&self) -> usize;
    /// [`Node::stats`].
    fn stats(&self) -> &NodeStats;
}

impl<M: Machine> SimNode for Node<M> {
    fn start(&mut self, now: Instant) {
        let _ = Node::start(self, now);
    }

    fn handle_message(&mut self, now: Instant, from: Address, text: &str) {
        let _ = Node::handle_message(self, now, from, text);
    }

    fn handle_timeout(&mut self, now: Instant) {
        Node::handle_timeout(self, now);
    }

    fn handle_event(&mut self, now: Instant, event: &TransportEvent) {
        Node::handle_event(self, now, event);
    }

    fn handle_heard(&mut self, at: Instant) {
        Node::handle_heard(self, at);
    }

    fn stop(&mut self, now: Instant) {
        let _ = Node::stop(self, now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Node::poll_timeout(self)
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        Node::poll_transmit(self)
    }

    fn poll_notice(&mut self) -> Option<Notice> {
        Node::poll_notice(self)
    }

    fn is_finished(&self) -> bool {
        Node::is_finished(self)
    }

    fn ending(&self) -> Option<&Ending> {
        Node::ending(self)
    }

    fn children(&self) -> Vec<Address> {
        self.child_addresses().map(|(a, _)| a).collect()
    }

    fn table_sizes(&self) -> usize {
        Node::table_sizes(self)
    }

    fn stats(&self) -> &NodeStats {
        Node::stats(self)
    }
}
