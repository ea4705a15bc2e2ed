"""The old path l0bayes.linear_model.subset_search re-exports the search's public names."""

import l0bayes.linear_model.search as search
import l0bayes.linear_model.stats as stats
import l0bayes.linear_model.subset_search as subset_search


def test_old_path_holds_the_same_objects():
    for name in subset_search.__all__:
        home = search if hasattr(search, name) else stats
        assert getattr(subset_search, name) is getattr(home, name), name
    assert set(search.__all__) < set(subset_search.__all__)
