"""Unit tests of scripts/mlp_draw.py."""

import warnings

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import pytest
import torch
from torch import nn
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlp_draw import mlp_draw, mlp_graph, NEGATIVE_COLOR, POSITIVE_COLOR


def fit_quietly(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, y)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    return X, (X[:, 0] > 0).astype(int), np.array([0, 1, 2] * 20), X @ [1.0, -2.0, 0.5]


@pytest.mark.parametrize("hidden", [(4,), (5, 3), (2, 7, 4)])
def test_graph_structure_matches_coefs(data, hidden):
    X, y, _, _ = data
    model = fit_quietly(MLPClassifier(hidden_layer_sizes=hidden, max_iter=20, random_state=0), X, y)
    graph = mlp_graph(model)
    sizes = [3, *hidden, 1]
    assert graph.number_of_nodes() == sum(sizes)
    assert graph.number_of_edges() == sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    for layer, W in enumerate(model.coefs_):
        for i in range(W.shape[0]):
            for j in range(W.shape[1]):
                assert graph.edges[(layer, i), (layer + 1, j)]["weight"] == W[i, j]
    assert {d["layer"] for _, d in graph.nodes(data=True)} == set(range(len(sizes)))
    assert nx.is_directed_acyclic_graph(graph)


def test_node_names_from_features_and_classes(data):
    X, _, y3, _ = data
    import pandas as pd

    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = fit_quietly(MLPClassifier(hidden_layer_sizes=(2,), max_iter=20, random_state=0), frame, y3)
    labels = nx.get_node_attributes(mlp_graph(model), "label")
    assert [labels[(0, i)] for i in range(3)] == ["a", "b", "c"]
    assert [labels[(2, i)] for i in range(3)] == ["0", "1", "2"]
    assert labels[(1, 1)] == "h1_2"


def test_default_names_and_regressor_output(data):
    X, _, _, yr = data
    model = fit_quietly(MLPRegressor(hidden_layer_sizes=(3,), max_iter=20, random_state=0), X, yr)
    labels = nx.get_node_attributes(mlp_graph(model), "label")
    assert labels[(0, 0)] == "x1" and labels[(2, 0)] == "ŷ"


def test_pipeline_is_unwrapped_and_keeps_feature_names(data):
    import pandas as pd

    X, _, _, yr = data
    pipe = Pipeline([("s", StandardScaler()), ("mlp", MLPRegressor(hidden_layer_sizes=(2,),
                                                                   max_iter=20, random_state=0))])
    fit_quietly(pipe, pd.DataFrame(X, columns=["p", "q", "r"]), yr)
    graph = mlp_graph(pipe)
    assert graph.nodes[(0, 2)]["label"] == "r"
    assert graph.number_of_edges() == 3 * 2 + 2 * 1


def test_torch_sequential_gives_the_same_graph_as_sklearn(data):
    X, y, _, _ = data
    model = fit_quietly(MLPClassifier(hidden_layer_sizes=(4, 2), max_iter=20, random_state=0), X, y)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.Tanh(), nn.Linear(2, 1))
    with torch.no_grad():
        for layer, W, b in zip([net[0], net[2], net[4]], model.coefs_, model.intercepts_):
            layer.weight.copy_(torch.tensor(W.T))
            layer.bias.copy_(torch.tensor(b))
    g_sk, g_t = mlp_graph(model, show_bias=True), mlp_graph(net, show_bias=True)
    assert set(g_sk.edges) == set(g_t.edges)
    for u, v in g_sk.edges:
        assert g_t.edges[u, v]["weight"] == pytest.approx(g_sk.edges[u, v]["weight"], abs=1e-6)


def test_bias_nodes_carry_the_intercepts(data):
    X, y, _, _ = data
    model = fit_quietly(MLPClassifier(hidden_layer_sizes=(3,), max_iter=20, random_state=0), X, y)
    graph = mlp_graph(model, show_bias=True)
    assert graph.nodes[(0, "bias")]["kind"] == "bias"
    got = [graph.edges[(0, "bias"), (1, j)]["weight"] for j in range(3)]
    assert got == list(model.intercepts_[0])
    assert graph.number_of_edges() == 3 * 3 + 3 * 1 + 3 + 1


# -- errors --------------------------------------------------------------------

def test_unfitted_model_says_to_fit_first():
    with pytest.raises(ValueError, match=r"not fitted yet: call fit"):
        mlp_draw(MLPClassifier())


def test_other_estimator_is_rejected(data):
    X, y, _, _ = data
    with pytest.raises(TypeError, match="cannot draw a LogisticRegression"):
        mlp_draw(LogisticRegression().fit(X, y))


def test_torch_layers_it_cannot_draw():
    with pytest.raises(TypeError, match=r"layer '0' \(Conv2d\)"):
        mlp_graph(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Linear(2, 1)))
    with pytest.raises(TypeError, match="nn.Sequential"):
        mlp_graph(nn.Linear(2, 1))
    with pytest.raises(ValueError, match="no nn.Linear"):
        mlp_graph(nn.Sequential(nn.ReLU()))


def test_linear_sizes_must_chain():
    with pytest.raises(ValueError, match=r"Linear layer '2' takes 5 inputs .* has 4 outputs"):
        mlp_graph(nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(5, 1)))


@pytest.mark.parametrize("kwargs, message", [
    ({"orientation": "d"}, "orientation must be"),
    ({"label_pos": 1.5}, r"label_pos must lie in \[0, 1\]"),
    ({"max_neurons": 0}, "max_neurons must be a positive"),
    ({"highlight": [((0, 0), (2, 0))]}, "not in this network"),
])
def test_bad_arguments(kwargs, message):
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    with pytest.raises(ValueError, match=message):
        mlp_draw(net, **kwargs)


# -- drawing -------------------------------------------------------------------

def small_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))


def test_draws_on_given_axes_without_a_new_figure():
    fig, ax = plt.subplots()
    before = plt.get_fignums()
    out = mlp_draw(small_net(), ax=ax)
    assert out is ax and plt.get_fignums() == before
    edges = ax.collections[0]
    assert len(edges.get_segments()) == 2 * 3 + 3 * 2 + 2 * 1


def test_edge_colour_by_sign_and_width_by_size():
    net = nn.Sequential(nn.Linear(2, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[0.5, -2.0]]))
    ax = mlp_draw(net)
    edges = ax.collections[0]
    from matplotlib.colors import to_rgba

    assert tuple(edges.get_colors()[0]) == pytest.approx(to_rgba(POSITIVE_COLOR))
    assert tuple(edges.get_colors()[1]) == pytest.approx(to_rgba(NEGATIVE_COLOR))
    widths = edges.get_linewidths()
    assert widths[1] > widths[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["positive weight",
                                                                        "negative weight"]


@pytest.mark.parametrize("orientation", ["h", "v"])
def test_orientation_puts_inputs_left_or_top(orientation):
    ax = mlp_draw(small_net(), orientation=orientation)
    segments = ax.collections[0].get_segments()
    first = segments[0]     # an edge from an input to the first hidden layer
    if orientation == "h":
        assert first[0][0] < first[1][0]
    else:
        assert first[0][1] > first[1][1]


def test_labels_one_per_edge_at_label_pos():
    ax = mlp_draw(small_net(), add_labels=True, label_pos=0.25, label_size=7)
    labels = [t for t in ax.texts if t.get_bbox_patch() is not None]   # node names have no box
    assert len(labels) == 2 * 3 + 3 * 2 + 2 * 1
    assert all(t.get_fontsize() == 7 for t in labels)
    graph = mlp_graph(small_net())
    first_weight = graph.edges[(0, 0), (1, 0)]["weight"]
    assert labels[0].get_text() == f"{first_weight:.2f}"
    # label_pos 0.25: a quarter of the way from the target (layer 1) back to the source
    assert labels[0].get_position()[0] == pytest.approx(0.75)


def test_max_neurons_adds_a_plus_n_node():
    wide = nn.Sequential(nn.Linear(1, 80), nn.ReLU(), nn.Linear(80, 20), nn.ReLU(), nn.Linear(20, 1))
    ax = mlp_draw(wide, max_neurons=8)
    names = [t.get_text() for t in ax.texts]
    assert "+72" in names and "+12" in names
    assert len(ax.collections[0].get_segments()) == 1 * 8 + 8 * 8 + 8 * 1


def test_highlight_path_and_dict():
    ax = mlp_draw(small_net(), highlight=[(0, 0), (1, 2), (2, 1), (3, 0)], highlight_color="green")
    assert len(ax.collections[1].get_segments()) == 3
    ax = mlp_draw(small_net(), highlight={"red": [((1, 0), (2, 0)), ((1, 0), (2, 1))],
                                          "blue": [(1, 0), (2, 0), (3, 0)]})
    assert [len(c.get_segments()) for c in ax.collections[1:3]] == [2, 2]


def test_alpha_applies_to_edges():
    ax = mlp_draw(small_net(), alpha=0.3)
    assert ax.collections[0].get_alpha() == 0.3


def test_the_lessons_calls_work(data):
    X, y, y3, yr = data
    binary = fit_quietly(MLPClassifier(hidden_layer_sizes=(8, 6), max_iter=50, random_state=0), X, y)
    multi = fit_quietly(MLPClassifier(hidden_layer_sizes=(3, 2), max_iter=50, random_state=0), X, y3)
    reg = Pipeline([("scaler", StandardScaler()),
                    ("mlp", MLPRegressor(hidden_layer_sizes=(80, 20), max_iter=5, random_state=0))])
    fit_quietly(reg, X[:, :1], yr)
    assert mlp_draw(model=binary, orientation="h", label_pos=2.3 / 7, add_labels=True)
    assert mlp_draw(model=multi, orientation="h", label_pos=1.3 / 7)
    ax = mlp_draw(reg["mlp"], orientation="h", figsize=(16, 16), alpha=0.5, add_labels=False)
    assert tuple(ax.figure.get_size_inches()) == (16, 16)
    assert len(ax.collections[0].get_segments()) == 80 + 80 * 20 + 20


def test_input_and_output_names_replace_the_defaults():
    graph = mlp_graph(small_net(), input_names=["length", "width"], output_names=["p"])
    assert [graph.nodes[(0, i)]["label"] for i in range(2)] == ["length", "width"]
    assert graph.nodes[(3, 0)]["label"] == "p"
    ax = mlp_draw(small_net(), input_names=["sepal_length", "b"])
    long_name = next(t for t in ax.texts if t.get_text() == "sepal_length")
    assert long_name.get_horizontalalignment() == "right"      # written left of its node
    with pytest.raises(ValueError, match="input_names has 3 names but the network has 2"):
        mlp_graph(small_net(), input_names=["a", "b", "c"])


def test_label_layers_labels_only_the_chosen_weight_layers():
    ax = mlp_draw(small_net(), add_labels=True, label_layers=[1, 3])
    labels = [t for t in ax.texts if t.get_bbox_patch() is not None]
    assert len(labels) == 2 * 3 + 2 * 1
    with pytest.raises(ValueError, match=r"label_layers \[0\] do not exist"):
        mlp_draw(small_net(), add_labels=True, label_layers=[0])


def test_drawing_a_scikit_learn_network_does_not_import_torch(data, monkeypatch):
    """A scikit-learn chapter draws its network without paying for an import of torch."""
    import sys

    tried = []

    class NoTorch:                         # an import system that records imports of torch
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "torch":
                tried.append(name)
                raise ImportError(f"{name} must not be imported here")
            return None

    X, y, _, _ = data
    model = fit_quietly(MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, random_state=0), X, y)
    monkeypatch.delitem(sys.modules, "torch")          # as in a kernel that never imported it
    monkeypatch.setattr(sys, "meta_path", [NoTorch(), *sys.meta_path])
    mlp_draw(model)
    assert tried == []
