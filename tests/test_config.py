"""persistlog.config: the documented defaults, each type and each range
bound of a setting, and the one-line errors (ConfigError) for what is
refused."""
import pytest

from persistlog import config
from persistlog.config import Config, ConfigError

tomllib = config.tomllib  # tomli before Python 3.11, as config.py takes it


def _load(tmp_path, text):
    p = tmp_path / "persistlog.conf"
    p.write_text(text)
    return config.load(str(p))


def test_the_documented_example_states_the_defaults():
    """The module docstring's example file gives every key with its default
    (except region and mirror_directory, whose defaults are computed)."""
    doc = config.__doc__
    body = doc[doc.index("Example /etc/persistlog.conf"):].split("\n", 1)[1]
    example = tomllib.loads("\n".join(line[4:] for line in body.splitlines()))
    assert set(example) == set(Config.__dataclass_fields__)
    defaults = Config()
    for key, value in example.items():
        if key in ("region", "mirror_directory"):
            continue
        want = tuple(value) if isinstance(value, list) else value
        assert getattr(defaults, key) == want, key
    assert defaults.region is None and defaults.mirror_directory is None


def test_a_file_overrides_the_defaults_it_names(tmp_path):
    c = _load(tmp_path, 'region = "/dev/shm/r"\narchive_keep = 3\nforward = true\n'
                        'forward_rate = 5\nforward_poll = 0.25\nmirror_units = ["a.service"]\n'
                        'pstore_dirs = []\n')
    assert c == Config(region="/dev/shm/r", archive_keep=3, forward=True, forward_rate=5,
                       forward_poll=0.25, mirror_units=("a.service",), pstore_dirs=())
    assert isinstance(c.mirror_units, tuple)


def test_an_empty_file_is_the_defaults(tmp_path):
    assert _load(tmp_path, "") == Config()


def test_the_default_file_may_be_absent_a_named_one_may_not(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "DEFAULT_CONFIG", str(tmp_path / "absent.conf"))
    assert config.load() == Config()
    with pytest.raises(ConfigError, match="no such configuration file"):
        config.load(str(tmp_path / "absent.conf"))
    (tmp_path / "absent.conf").write_text("archive_keep = 4\n")
    assert config.load().archive_keep == 4


def test_an_unreadable_file_and_bad_toml_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(str(tmp_path))  # a directory
    with pytest.raises(ConfigError, match="not valid TOML"):
        _load(tmp_path, "archive_keep = \n")


@pytest.mark.parametrize("text, message", [
    ("nonsense = 1", "unknown setting 'nonsense'"),
    ("archive_keep = true", "archive_keep must be an integer, not True"),
    ("archive_keep = 1.5", "archive_keep must be an integer"),
    ("archive_keep = \"3\"", "archive_keep must be an integer"),
    ("forward = 1", "forward must be true or false"),
    ("forward_rate = true", "forward_rate must be an integer or a number"),
    ("region = 5", "region must be a string"),
    ("pstore_dirs = \"/x\"", "pstore_dirs must be a list of strings"),
    ("pstore_dirs = [1]", "pstore_dirs must be a list of strings"),
    ("mirror_fields = [\"A\", 2]", "mirror_fields must be a list of strings"),
])
def test_a_wrong_type_is_refused(tmp_path, text, message):
    with pytest.raises(ConfigError, match="persistlog.conf: " + message.replace("(", r"\(")):
        _load(tmp_path, text + "\n")


# (setting, smallest value taken, largest value refused below it)
LOWER_BOUNDS = [
    ("journal_keep", 1, 0), ("archive_keep", 1, 0), ("sync_every", 1, 0),
    ("journal_max_bytes", 1, 0), ("archive_max_bytes", 1, 0),
    ("forward_rate", 0.001, 0), ("forward_poll", 0.001, 0),
    ("mirror_save_interval", 0.001, 0), ("mirror_poll", 0.001, 0),
    ("mirror_max_priority", 0, -1),
]


@pytest.mark.parametrize("key, ok, bad", LOWER_BOUNDS, ids=[b[0] for b in LOWER_BOUNDS])
def test_each_lower_bound(tmp_path, key, ok, bad):
    assert getattr(_load(tmp_path, f"{key} = {ok}\n"), key) == ok
    with pytest.raises(ConfigError, match=f"{key} must be"):
        _load(tmp_path, f"{key} = {bad}\n")
    with pytest.raises(ConfigError, match=f"{key} must be"):
        config.check(Config(**{key: bad}))


def test_priority_and_start_take_only_their_values(tmp_path):
    assert _load(tmp_path, "mirror_max_priority = 7\n").mirror_max_priority == 7
    with pytest.raises(ConfigError, match="mirror_max_priority must be a priority from 0 to 7"):
        _load(tmp_path, "mirror_max_priority = 8\n")
    for start in ("tail", "boot"):
        assert _load(tmp_path, f'mirror_start = "{start}"\n').mirror_start == start
    with pytest.raises(ConfigError, match='mirror_start must be "tail" or "boot", not \'head\''):
        _load(tmp_path, 'mirror_start = "head"\n')


def test_check_names_where_the_settings_came_from():
    with pytest.raises(ConfigError, match="^settings: sync_every must be at least 1$"):
        config.check(Config(sync_every=0))
    with pytest.raises(ConfigError, match="^--foo: journal_keep must be at least 1$"):
        config.check(Config(journal_keep=0), "--foo")
    config.check(Config())


def test_overrides_replace_only_what_is_given():
    c = Config().with_overrides(region="/r", archive_keep=None, forward=False, sync_every=5)
    assert c == Config(region="/r", sync_every=5)
    assert Config().with_overrides() == Config()


def test_settings_cannot_be_changed_in_place():
    """Config is frozen: the daemon and the mirror share one; a change is a new one."""
    import dataclasses
    c = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.archive_keep = 1
    assert hash(c) == hash(Config())
