"""Built-in pipeline steps: data validation, scikit-learn train/evaluate, model gate, register.

import heron
from heron import steps

@heron.pipeline
def retrain(dataset: str = "churn", target: str = "churned"):
    data = steps.validate_data(steps.load_dataset(dataset), reference=dataset,
                               reference_version=1)
    train, holdout = steps.split_holdout(data, target)
    model = steps.train_sklearn(train, target)
    verdict = steps.validate_model(model, holdout, target, model_name="churn", margin=0.01)
    return steps.register_model(model, "churn", verdict=verdict, alias="challenger")
"""

from heron._pipelines._builtin import (
    DataValidationFailed,
    evaluate_sklearn,
    load_dataset,
    register_model,
    split_holdout,
    train_sklearn,
    validate_data,
    validate_model,
)

__all__ = [
    "DataValidationFailed",
    "evaluate_sklearn",
    "load_dataset",
    "register_model",
    "split_holdout",
    "train_sklearn",
    "validate_data",
    "validate_model",
]
