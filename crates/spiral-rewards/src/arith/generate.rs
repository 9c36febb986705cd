//! The seeded arithmetic generator: a few small integers joined by `+ - *`, optionally with one
//! parenthesised group, e.g. `12+7*3-5` or `(12+7)*3-5`.
//!
//! Every problem needs one step per operator in the scratchpad format of Nye et al. (2021, "Show
//! Your Work"), so difficulty is set by the operand count alone.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::ArithProblem;
use super::eval::evaluate_steps;
use crate::distinct::draw_distinct;
use crate::error::RewardError;

/// How arithmetic problems are drawn.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArithConfig {
    /// Fewest operands (at least 2).
    pub min_operands: usize,
    /// Most operands (at most 16).
    pub max_operands: usize,
    /// Largest operand (operands are drawn from 1..=max_operand).
    pub max_operand: u64,
    /// The operators used, a non-empty subset of `+-*`.
    pub operators: String,
    /// Whether half the problems get one parenthesised group.
    pub parentheses: bool,
}

impl Default for ArithConfig {
    /// 3-4 operands from 1-20 with `+ - *` and occasional parentheses.
    fn default() -> Self {
        Self {
            min_operands: 3,
            max_operands: 4,
            max_operand: 20,
            operators: "+-*".to_owned(),
            parentheses: true,
        }
    }
}

impl ArithConfig {
    /// Checks the ranges; the error names the field and the accepted values.
    pub fn validate(&self) -> Result<(), RewardError> {
        let fail = |m: String| Err(RewardError::config("arith config", m));
        if self.min_operands < 2 || self.max_operands > 16 || self.min_operands > self.max_operands
        {
            return fail(format!(
                "operands must satisfy 2 <= min_operands <= max_operands <= 16, got {}..={}",
                self.min_operands, self.max_operands
            ));
        }
        if self.max_operand < 1 || self.max_operand > 1_000_000 {
            return fail(format!(
                "max_operand must be within 1..=1000000, got {}",
                self.max_operand
            ));
        }
        if self.operators.is_empty() || !self.operators.chars().all(|c| "+-*".contains(c)) {
            return fail(format!(
                "operators must be a non-empty subset of \"+-*\", got {:?}",
                self.operators
            ));
        }
        Ok(())
    }

    /// Draws one problem.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<ArithProblem, RewardError> {
        self.validate()?;
        let ops: Vec<char> = self.operators.chars().collect();
        // Products of up to 16 operands of up to 10^6 can overflow: redraw (rare with sane
        // settings; bounded).
        for _ in 0..1000 {
            let n = rng.random_range(self.min_operands..=self.max_operands);
            let operands: Vec<u64> =
                (0..n).map(|_| rng.random_range(1..=self.max_operand)).collect();
            let operators: Vec<char> =
                (1..n).map(|_| ops[rng.random_range(0..ops.len())]).collect();
            let group = (self.parentheses && n >= 3 && rng.random_bool(0.5)).then(|| {
                // A group of 2..n-1 operands, never the whole expression.
                let len = rng.random_range(2..n);
                let start = rng.random_range(0..=n - len);
                (start, start + len - 1)
            });
            let expression = render(&operands, &operators, group);
            if let Some((_, answer)) = evaluate_steps(&expression) {
                return Ok(ArithProblem { expression, answer });
            }
        }
        Err(RewardError::config("arith config", "values overflow i64; lower max_operand"))
    }

    /// `count` distinct problems from `seed`.
    ///
    /// ```
    /// use spiral_rewards::ArithConfig;
    ///
    /// let problems = ArithConfig::default().generate(50, 3).unwrap();
    /// assert_eq!(problems.len(), 50);
    /// assert_eq!(problems, ArithConfig::default().generate(50, 3).unwrap());
    /// ```
    pub fn generate(&self, count: usize, seed: u64) -> Result<Vec<ArithProblem>, RewardError> {
        draw_distinct(
            count,
            seed,
            "arith config",
            |rng| self.sample(rng),
            |p: &ArithProblem| p.expression.clone(),
        )
    }
}

/// `a+b*c` with operands `group.0..=group.1` in parentheses.
fn render(operands: &[u64], operators: &[char], group: Option<(usize, usize)>) -> String {
    let mut s = String::new();
    for (i, n) in operands.iter().enumerate() {
        if i > 0 {
            s.push(operators[i - 1]);
        }
        if group.is_some_and(|(a, _)| a == i) {
            s.push('(');
        }
        s.push_str(&n.to_string());
        if group.is_some_and(|(_, b)| b == i) {
            s.push(')');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_groups() {
        assert_eq!(render(&[1, 2, 3], &['+', '*'], None), "1+2*3");
        assert_eq!(render(&[1, 2, 3], &['+', '*'], Some((0, 1))), "(1+2)*3");
        assert_eq!(render(&[1, 2, 3, 4], &['+', '*', '-'], Some((1, 2))), "1+(2*3)-4");
    }

    #[test]
    fn generated_problems_follow_the_config() {
        let cfg = ArithConfig::default();
        let problems = cfg.generate(500, 9).unwrap();
        let mut with_parens = 0;
        for p in &problems {
            let operands =
                p.expression.split(['+', '-', '*', '(', ')']).filter(|s| !s.is_empty()).count();
            assert!((3..=4).contains(&operands), "{}", p.expression);
            with_parens += usize::from(p.expression.contains('('));
            let (steps, value) = evaluate_steps(&p.expression).unwrap();
            assert_eq!(value, p.answer);
            assert_eq!(steps.len(), operands - 1);
        }
        assert!((100..400).contains(&with_parens), "{with_parens}");
        let only_plus = ArithConfig { operators: "+".into(), parentheses: false, ..cfg };
        for p in only_plus.generate(20, 1).unwrap() {
            assert!(!p.expression.contains(['-', '*', '(']));
        }
    }

    #[test]
    fn impossible_configurations_are_errors() {
        let d = ArithConfig::default();
        let err = |c: ArithConfig| c.generate(1, 0).unwrap_err().to_string();
        assert!(err(ArithConfig { min_operands: 1, ..d.clone() }).contains("min_operands"));
        assert!(err(ArithConfig { operators: "/".into(), ..d.clone() }).contains("operators"));
        assert!(err(ArithConfig { operators: String::new(), ..d.clone() }).contains("operators"));
        assert!(err(ArithConfig { max_operand: 0, ..d.clone() }).contains("max_operand"));
        let tiny = ArithConfig {
            min_operands: 2,
            max_operands: 2,
            max_operand: 1,
            operators: "+".into(),
            parentheses: false,
        };
        assert!(tiny.generate(2, 0).unwrap_err().to_string().contains("distinct"));
        // An absurd count is the same error, not an allocation failure before the first draw.
        let msg = tiny.clone().generate(usize::MAX, 0).unwrap_err().to_string();
        assert!(msg.contains("distinct"), "{msg}");
        let huge = ArithConfig {
            min_operands: 16,
            max_operands: 16,
            max_operand: 1_000_000,
            operators: "*".into(),
            parentheses: false,
        };
        assert!(err(huge).contains("overflow"));
    }
}
