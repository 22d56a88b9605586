"""Save the benchmark's model in MLflow's format (run with the MLflow venv's Python).

The same model as Heron serves: LogisticRegression(max_iter=5000) fitted on scikit-learn's
breast_cancer data as a DataFrame (deterministic, so both servers hold equal models).
Usage: python mlflow_model.py OUTPUT_DIR
"""

import shutil
import sys

import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

out = sys.argv[1]
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
model = LogisticRegression(max_iter=5000).fit(X, y)
shutil.rmtree(out, ignore_errors=True)
mlflow.sklearn.save_model(
    model, out, signature=infer_signature(X, model.predict(X)), input_example=X.head(3)
)
print(out)
