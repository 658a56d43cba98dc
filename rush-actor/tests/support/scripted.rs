//! A saga whose steps only record their calls and answer what a script says: for tests of
//! the saga runtime itself (order, retries, dead letters, panics).
#![allow(dead_code)]

use rush_actor::{RetryPolicy, SagaDefinition, SagaStep, StepContext, StepError, StepPhase};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One call of an action or a compensation.
#[derive(Debug, Clone)]
pub struct Call {
    pub step: String,
    pub phase: StepPhase,
    pub attempt: u32,
    pub idempotency_key: String,
    pub at: Instant,
}

/// What a step answers: given the step, the phase and how many times this exact command
/// was called before (over all runs).
pub type Script = Arc<dyn Fn(&str, StepPhase, usize) -> Result<(), StepError> + Send + Sync>;

#[derive(Clone)]
pub struct Scripted {
    pub steps: Vec<&'static str>,
    pub calls: Arc<Mutex<Vec<Call>>>,
    pub script: Script,
    pub retry: RetryPolicy,
}

impl Scripted {
    pub fn new(
        steps: &[&'static str],
        script: impl Fn(&str, StepPhase, usize) -> Result<(), StepError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            steps: steps.to_vec(),
            calls: Arc::default(),
            script: Arc::new(script),
            retry: RetryPolicy {
                max_retries: 2,
                initial_delay: Duration::from_millis(1),
                jitter: 0.0,
                ..RetryPolicy::default()
            },
        }
    }

    /// `step.phase` of every call, in order.
    pub fn trace(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| format!("{}.{}", c.step, c.phase))
            .collect()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn call(&self, ctx: &StepContext<String>) -> Result<(), StepError> {
        let before = {
            let mut calls = self.calls.lock().unwrap();
            let before = calls
                .iter()
                .filter(|c| c.step == ctx.step() && c.phase == ctx.phase())
                .count();
            calls.push(Call {
                step: ctx.step().to_owned(),
                phase: ctx.phase(),
                attempt: ctx.attempt(),
                idempotency_key: ctx.idempotency_key(),
                at: Instant::now(),
            });
            before
        };
        (self.script)(ctx.step(), ctx.phase(), before)
    }
}

impl SagaDefinition for Scripted {
    type Data = String;
    const NAME: &'static str = "scripted";

    fn steps(&self) -> Vec<SagaStep<String>> {
        self.steps
            .iter()
            .map(|name| {
                let (a, c) = (self.clone(), self.clone());
                SagaStep::new(*name, move |ctx: StepContext<String>| {
                    let result = a.call(&ctx);
                    async move { result }
                })
                .with_compensation(move |ctx: StepContext<String>| {
                    let result = c.call(&ctx);
                    async move { result }
                })
            })
            .collect()
    }

    fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }
}

pub fn ok(_: &str, _: StepPhase, _: usize) -> Result<(), StepError> {
    Ok(())
}
