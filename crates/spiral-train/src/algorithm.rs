//! The RL algorithms `spiral-train` runs and, as data, the advantage estimators each one uses
//! (their formulas are in `spiral-set-rl`):
//!
//! | algorithm | search traces | aggregation traces |
//! |---|---|---|
//! | GRPO (Shao et al., 2024, arXiv:2402.03300) | `(r - mean) / std` in a group of N1 | - |
//! | Dr.GRPO (Liu et al., 2025, arXiv:2503.20783) | `r - mean` in a group of N1 | - |
//! | SPIRAL (Ibn Hamid et al., 2026, arXiv:2606.23595) | set RL | centred in their set |
//! | ParaGator (arXiv:2603.18886) | pass@k, k = n | Dr.GRPO over the problem |
//! | multitask (a control) | Dr.GRPO on their own rewards in a group of N1 | centred in their set |
//!
//! The multitask control trains the same traces as SPIRAL, with the same aggregation-trace
//! credit, but credits each search trace by its own reward rather than by the sets it was in:
//! it separates what set-RL credit adds from what training the aggregator on-policy adds.

use serde::{Deserialize, Serialize};

/// Which RL algorithm trains the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// SPIRAL: set RL on search traces, policy gradient on aggregation traces.
    Spiral,
    /// GRPO: group-normalised advantages on single traces.
    Grpo,
    /// Dr.GRPO: mean-centred advantages on single traces.
    DrGrpo,
    /// ParaGator: pass@k advantages (k = n, no std division) on search traces, Dr.GRPO
    /// advantages over all aggregation traces of a problem.
    Paragator,
    /// The multitask control: Dr.GRPO on search traces' own rewards, SPIRAL's in-set credit on
    /// aggregation traces.
    Multitask,
}

impl Algorithm {
    /// The name used in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spiral => "spiral",
            Self::Grpo => "grpo",
            Self::DrGrpo => "dr_grpo",
            Self::Paragator => "paragator",
            Self::Multitask => "multitask",
        }
    }

    /// How the algorithm credits the traces it trains: its advantage estimators.
    pub fn credit(self) -> Credit {
        match self {
            Self::Grpo => Credit::Group(GroupAdvantage::Grpo),
            Self::DrGrpo => Credit::Group(GroupAdvantage::DrGrpo),
            Self::Spiral => Credit::Sets {
                search: SearchAdvantage::SetRl,
                aggregation: AggregationAdvantage::InSet,
            },
            Self::Paragator => Credit::Sets {
                search: SearchAdvantage::PassAtK,
                aggregation: AggregationAdvantage::PerProblem,
            },
            Self::Multitask => Credit::Sets {
                search: SearchAdvantage::OwnReward,
                aggregation: AggregationAdvantage::InSet,
            },
        }
    }

    /// Whether the algorithm trains aggregation traces (else it trains single traces only).
    pub fn aggregates(self) -> bool {
        matches!(self.credit(), Credit::Sets { .. })
    }
}

/// An algorithm's advantage estimators (formulas in `spiral-set-rl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credit {
    /// One group of N1 single traces per problem, each credited against its group.
    Group(GroupAdvantage),
    /// N1 search traces per problem, K sets of n aggregated N2 times each.
    Sets {
        /// How search traces are credited.
        search: SearchAdvantage,
        /// How aggregation traces are credited.
        aggregation: AggregationAdvantage,
    },
}

/// A single trace's advantage within its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupAdvantage {
    /// `(r - mean) / std` (GRPO).
    Grpo,
    /// `r - mean` (Dr.GRPO).
    DrGrpo,
}

/// A search trace's advantage when its problem's traces are aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchAdvantage {
    /// Set RL (SPIRAL): the mean advantage of the sets that hold the trace, from the
    /// aggregation traces' rewards only.
    SetRl,
    /// pass@k with k = n on the search traces' own rewards (ParaGator's candidates).
    PassAtK,
    /// Dr.GRPO on the search traces' own rewards, the problem's N1 traces one group (the
    /// multitask control).
    OwnReward,
}

/// An aggregation trace's advantage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregationAdvantage {
    /// Centred within its own set (SPIRAL).
    InSet,
    /// Dr.GRPO over every aggregation trace of the problem (ParaGator's pass@1).
    PerProblem,
}
