import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from knowwhen import KnowwhenClassifier


def _small_digits():
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600]


def test_fit_predict_proba_score_on_flat_rows():
    X, y = _small_digits()
    names = np.array(list("abcdefghij"))[y]  # any labels work
    clf = KnowwhenClassifier(model="mlp", epochs=5, seed=0).fit(X[:500], names[:500])
    proba = clf.predict_proba(X[500:])
    assert proba.shape == (100, 10) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert set(clf.predict(X[500:])) <= set(clf.classes_)
    assert clf.score(X[500:], names[500:]) > 0.7


def test_get_params_clone_cross_validation_and_grid_search():
    X, y = _small_digits()
    clf = KnowwhenClassifier(model="linear", epochs=10, batch_size=32, lr=0.01)
    assert clf.get_params()["lr"] == 0.01 and clone(clf).get_params() == clf.get_params()
    scores = cross_val_score(clf, X, y, cv=2)
    assert scores.shape == (2,) and scores.min() > 0.5
    grid = GridSearchCV(clf, {"lr": [0.001, 0.01]}, cv=2).fit(X, y)
    assert grid.best_params_["lr"] in (0.001, 0.01)
    pipe = make_pipeline(FunctionTransformer(lambda a: a / 16.0), KnowwhenClassifier(model="cnn", epochs=2))
    assert pipe.fit(X, y).score(X, y) > 0.3
