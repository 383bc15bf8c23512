"""Generator of the demo organisation catalogues under ``data/catalogues`` (deterministic).

``python -m etl.catalogues [--seed N] [--out DIR] [--boundaries GPKG]`` rewrites
departments.csv, power_items.csv, class_routes.csv, class_powers.csv, staff.csv,
staff_grids.csv and grid_area_classes.csv. The same seed and boundary file always give the
same bytes, so the shipped files can be checked by regenerating them.

What is real and what is demo (see data/catalogues/README.md): department names follow the
district's real bodies; the 9 specialised squadrons, every power item, every person and every
phone number are demo data (``demo=true``). Power-item counts per transfer are the real ones
(DOMAIN §6); names and legal-basis articles are generated. Staff counts are the real ones
(DOMAIN §1); names are drawn from common surnames and given-name characters.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

from gis.catalogues import CLASSES_CSV, read_classes
from gis.config import DATA_DIR, SHIPPED_BOUNDARIES
from gis.crs import to_metric
from gis.partition import STREETS, apportion, density, read_geopackage

DEFAULT_SEED = 2018
OUT_DIR = DATA_DIR / "catalogues"

# -- departments ---------------------------------------------------------------------------------
DEPARTMENT_FIELDS = ("code", "name", "kind", "parent", "street_code", "line", "demo")
DISTRICT = "梁溪区"
TEAM_NAME = f"{DISTRICT}综合行政执法大队"


def _dept(code: str, name: str, kind: str, parent: str = "", street_code: str = "",
          line: str = "", demo: bool = False) -> dict[str, str]:
    return {"code": code, "name": name, "kind": kind, "parent": parent,
            "street_code": street_code, "line": line, "demo": _flag(demo)}


def _flag(value: bool) -> str:
    return "true" if value else "false"


def departments() -> list[dict[str, str]]:
    """The district organisation, parents before children."""
    rows = [
        _dept("command_centre", f"{DISTRICT}数字城管指挥中心", "command_centre",
              line="urban_management"),
        _dept("caeb", f"{DISTRICT}综合行政执法局", "bureau", line="urban_management"),
        _dept("caeb_team", TEAM_NAME, "enforcement_team", "caeb", line="urban_management"),
    ]
    rows += [_dept(f"squadron_{s.full_code}", f"{TEAM_NAME}{s.name}中队", "squadron",
                   "caeb_team", s.full_code, "urban_management") for s in STREETS]
    rows += [_dept(code, f"{TEAM_NAME}{name}", "squadron", "caeb_team",
                   line="urban_management", demo=True) for code, name in SPECIALISED_SQUADRONS]
    rows += [
        _dept("cmb", f"{DISTRICT}城市管理局", "bureau", line="urban_management"),
        _dept("msb", f"{DISTRICT}市场监督管理局", "bureau", line="market_regulation"),
        _dept("hcb", f"{DISTRICT}住房和城乡建设局", "bureau"),
        _dept("csb", f"{DISTRICT}文化体育和旅游局", "bureau"),
        _dept("drb", f"{DISTRICT}发展和改革委员会", "bureau"),
        _dept("emb", f"{DISTRICT}应急管理局", "bureau", line="production_safety"),
        _dept("eeb", "无锡市梁溪生态环境局", "bureau", line="environment"),
        _dept("wrb", f"{DISTRICT}水利局", "bureau", line="water"),
        _dept("psb", "无锡市公安局梁溪分局", "bureau", line="public_security"),
        _dept("hrssb", f"{DISTRICT}人力资源和社会保障局", "bureau"),
        _dept("hhc", f"{DISTRICT}卫生健康委员会", "bureau", line="food_drug"),
        _dept("labour_inspection_team", f"{DISTRICT}劳动保障监察大队", "professional_team",
              "hrssb"),
        _dept("health_supervision_team", f"{DISTRICT}卫生监督所", "professional_team", "hhc",
              line="food_drug"),
        _dept("market_enforcement_team", f"{DISTRICT}市场监管综合执法大队", "professional_team",
              "msb", line="market_regulation"),
        _dept("safety_enforcement_team", f"{DISTRICT}安全生产执法大队", "professional_team",
              "emb", line="production_safety"),
        _dept("governance_centre", f"{DISTRICT}社会治理综合指挥中心", "bureau",
              line="comprehensive_governance"),
    ]
    rows += [_dept(f"street_office_{s.full_code}", f"{s.name}办事处", "street_office",
                   "governance_centre", s.full_code, "comprehensive_governance")
             for s in STREETS]
    return rows


# -- power list ----------------------------------------------------------------------------------
POWER_FIELDS = ("code", "name", "legal_basis", "original_department", "executing_department",
                "kind", "valid_from", "valid_to", "demo")
KIND_PREFIX = {"penalty": "CF", "coercive_measure": "QZ"}


@dataclass(frozen=True)
class Transfer:
    """``count`` items of ``kind`` moved from ``original`` to ``executing``."""

    original: str
    executing: str
    kind: str
    count: int
    valid_from: str
    valid_to: str = ""


#: DOMAIN §6: the 2018-11-01 transfer (centralised items were already held earlier).
TRANSFERS = (
    Transfer("hcb", "caeb", "penalty", 436, "2018-11-01"),
    Transfer("csb", "caeb", "penalty", 10, "2018-11-01"),
    Transfer("caeb", "caeb", "penalty", 256, "2016-07-01"),
    Transfer("caeb", "caeb", "coercive_measure", 10, "2016-07-01"),
    Transfer("drb", "msb", "penalty", 11, "2018-11-01"),
    Transfer("drb", "msb", "coercive_measure", 2, "2018-11-01"),
    Transfer("msb", "msb", "penalty", 1133, "2015-10-01"),
    Transfer("msb", "msb", "coercive_measure", 55, "2015-10-01"),
)
#: Dynamic adjustment: items on top of the seed counts that have since been withdrawn.
EXPIRED = (
    Transfer("hcb", "caeb", "penalty", 4, "2018-11-01", "2018-12-31"),
    Transfer("msb", "msb", "penalty", 3, "2015-10-01", "2018-12-01"),
)


@dataclass(frozen=True)
class Domain:
    """A field of law of one department: the vocabulary its item names are drawn from."""

    key: str
    laws: tuple[str, ...]
    articles: int
    subjects: tuple[str, ...]
    acts: tuple[str, ...]


@dataclass(frozen=True)
class Draft:
    """A generated power item name with the domain it belongs to."""

    name: str
    domain: Domain


def _penalty_pool(department: str) -> list[Draft]:
    return [Draft(f"对{subject}{act}{qualifier}的行政处罚", domain)
            for domain in DOMAINS[department] for act in domain.acts
            for subject in domain.subjects for qualifier in QUALIFIERS]


def _coercive_pool(department: str) -> list[Draft]:
    domains = {d.key: d for d in DOMAINS[department]}
    return [Draft(f"{measure}{thing}", domains[key])
            for key, things in COERCIVE_OBJECTS[department]
            for thing in things for measure in COERCIVE_MEASURES]


def _legal_basis(domain: Domain, rng: random.Random) -> str:
    law = rng.choice(domain.laws)
    return f"《{law}》第{rng.randint(8, domain.articles)}条"


def power_items(seed: int = DEFAULT_SEED) -> tuple[list[dict[str, str]], dict[str, Domain]]:
    """All power items (seed counts, then the expired extras) and each item's domain."""
    rng = random.Random(f"{seed}:powers")
    pools: dict[tuple[str, str], list[Draft]] = {}
    numbers = dict.fromkeys(KIND_PREFIX, 0)
    rows, domains = [], {}
    for transfer in (*TRANSFERS, *EXPIRED):
        key = (transfer.original, transfer.kind)
        if key not in pools:
            pool = (_penalty_pool if transfer.kind == "penalty" else _coercive_pool)(key[0])
            pools[key] = rng.sample(pool, len(pool))
        for draft in _take(pools[key], transfer.count, key):
            numbers[transfer.kind] += 1
            code = f"LX-{KIND_PREFIX[transfer.kind]}-{numbers[transfer.kind]:06d}"
            rows.append({"code": code, "name": draft.name,
                         "legal_basis": _legal_basis(draft.domain, rng),
                         "original_department": transfer.original,
                         "executing_department": transfer.executing, "kind": transfer.kind,
                         "valid_from": transfer.valid_from, "valid_to": transfer.valid_to,
                         "demo": "true"})
            domains[code] = draft.domain
    return rows, domains


def _take(pool: list[Draft], count: int, key: tuple[str, str]) -> list[Draft]:
    if len(pool) < count:
        raise ValueError(f"vocabulary of {key} gives {len(pool)} names, {count} needed")
    taken = pool[:count]
    del pool[:count]
    return taken


# -- class routes and class powers ---------------------------------------------------------------
ROUTE_FIELDS = ("class_code", "department", "role")
CLASS_POWER_FIELDS = ("class_code", "power_code")

#: Responsible department per line (urban-management components go to their owner, cmb).
LINE_DEPARTMENT = {
    "urban_management": "caeb",
    "comprehensive_governance": "governance_centre",
    "public_security": "psb",
    "environment": "eeb",
    "water": "wrb",
    "production_safety": "emb",
    "food_drug": "msb",
    "market_regulation": "msb",
}
COMPONENT_OWNER = "cmb"

#: Departments copied in (抄告) per class.
COPIES = {
    "E0105": ("caeb",),                      # 水域不洁: river appearance
    "E0107": ("caeb",),                      # 焚烧垃圾树叶
    "E0109": ("caeb",),                      # 餐饮油烟
    "E0301": ("hcb",),                       # 施工扰民
    "E0302": ("hcb", "caeb"),                # 工地扬尘
    "E0401": ("caeb",),                      # 无照经营游商
    "E0402": ("psb",),                       # 流浪乞讨
    "E0404": ("msb",),                       # 店外经营
    "E0405": ("caeb",),                      # 机动车乱停放
    "E0408": ("caeb",),                      # 露天烧烤
    "E0503": ("hcb",),                       # 燃气管道破裂
    "E0601": ("psb",),                       # 犬类扰民
    "E0602": ("caeb",),                      # 噪声扰民
    "E0702": ("health_supervision_team",),   # 食品安全隐患
    "E0703": ("health_supervision_team",),   # 药品安全隐患
    "E0706": ("eeb",),                       # 河道违法排污
    "E0707": ("governance_centre",),         # 治安隐患
    "E0709": ("psb",),                       # 消防通道堵塞
}

#: Power items each class may call on: (original department, domain key, how many).
CLASS_POWER_PLAN: dict[str, tuple[tuple[str, str, int], ...]] = {
    "E0101": (("hcb", "planning", 4),),
    "E0102": (("caeb", "waste", 2),),
    "E0103": (("caeb", "spoil", 2),),
    "E0104": (("caeb", "appearance", 2),),
    "E0106": (("caeb", "greening", 2),),
    "E0108": (("caeb", "appearance", 2),),
    "E0109": (("caeb", "air", 2),),
    "E0201": (("caeb", "advertising", 2),),
    "E0202": (("caeb", "advertising", 3),),
    "E0203": (("caeb", "advertising", 2),),
    "E0204": (("caeb", "advertising", 1),),
    "E0301": (("caeb", "air", 1),),
    "E0302": (("caeb", "air", 1), ("hcb", "quality", 1)),
    "E0303": (("caeb", "spoil", 2),),
    "E0304": (("caeb", "spoil", 2),),
    "E0305": (("caeb", "roads", 2), ("hcb", "municipal", 1)),
    "E0401": (("msb", "unlicensed", 2), ("caeb", "appearance", 1)),
    "E0403": (("caeb", "roads", 1),),
    "E0404": (("caeb", "appearance", 3),),
    "E0406": (("caeb", "roads", 1),),
    "E0408": (("caeb", "air", 2),),
    "E0503": (("hcb", "gas", 2),),
    "E0702": (("msb", "food", 3),),
    "E0703": (("msb", "drugs", 2),),
    "E0708": (("msb", "unlicensed", 3), ("msb", "registration", 1)),
    "C0305": (("caeb", "advertising", 1),),
    "C0404": (("caeb", "greening", 1),),
}


def class_routes(classes: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """One responsible department per class (from its line) plus the copies."""
    rows = []
    for cls in classes:
        code = cls["code"]
        responsible = LINE_DEPARTMENT[cls["line"]]
        if code.startswith("C") and cls["line"] == "urban_management":
            responsible = COMPONENT_OWNER
        rows.append({"class_code": code, "department": responsible, "role": "responsible"})
        rows += [{"class_code": code, "department": d, "role": "copy"}
                 for d in COPIES.get(code, ()) if d != responsible]
    return rows


def class_powers(classes: Sequence[dict[str, str]], items: Sequence[dict[str, str]],
                 domains: dict[str, Domain]) -> list[dict[str, str]]:
    """The first current items of the planned (department, domain) for each catalogued class."""
    known = {cls["code"] for cls in classes}
    rows = []
    for class_code, plan in CLASS_POWER_PLAN.items():
        if class_code not in known:
            continue
        for department, key, count in plan:
            codes = [i["code"] for i in items if i["original_department"] == department
                     and domains[i["code"]].key == key and not i["valid_to"]][:count]
            rows += [{"class_code": class_code, "power_code": c} for c in codes]
    return rows


# -- grids and area classes ----------------------------------------------------------------------
AREA_CLASS_FIELDS = ("grid_code", "area_class")
#: Area-class thresholds on gis.partition.density at a grid's interior point (1 … 6): about a
#: quarter of the shipped grids are A (old town), a half B, a quarter C (outskirts).
AREA_A_MIN = 4.0
AREA_C_BELOW = 1.1


@dataclass(frozen=True)
class Grid:
    code: str
    density: float

    @property
    def community(self) -> str:
        return self.code[:12]

    @property
    def street(self) -> str:
        return self.code[:9]


def read_grids(path: Path = SHIPPED_BOUNDARIES) -> list[Grid]:
    """The grids of a boundary GeoPackage with the density at their interior point, by code."""
    frame = read_geopackage(path)["grid"].sort_values("code")
    points = shapely.point_on_surface(frame.geometry.values)
    x, y = to_metric(shapely.get_x(points), shapely.get_y(points))
    return [Grid(str(code), float(d)) for code, d in zip(frame["code"], density(x, y),
                                                            strict=True)]


def area_class(value: float) -> str:
    """A (old town, density ≥ 4.0), B, or C (outskirts, density < 1.1)."""
    if value >= AREA_A_MIN:
        return "A"
    return "C" if value < AREA_C_BELOW else "B"


def area_classes(grids: Sequence[Grid]) -> list[dict[str, str]]:
    return [{"grid_code": g.code, "area_class": area_class(g.density)} for g in grids]


# -- staff ---------------------------------------------------------------------------------------
STAFF_FIELDS = ("code", "name", "post", "department", "phone", "active", "demo")
STAFF_GRID_FIELDS = ("staff_code", "grid_code", "role")
GRID_LEADERS = 2104
GRID_WORKERS = 6901
MANAGEMENT_MEMBERS = 712
ENFORCEMENT_MEMBERS = 187
MAX_GRIDS_PER_LEADER = 3
#: Management members per department; the squadrons share the rest evenly.
MANAGEMENT_HOMES = {"command_centre": 52, "caeb": 60, "cmb": 20, "caeb_team": 30}
#: Command-centre posts (DOMAIN §1, §5).
CENTRE_POSTS = (("call_taker", 8), ("acceptor", 6), ("shift_leader", 4), ("dispatcher", 6),
                ("supervisor", 16))
POST_PREFIX = {"management_member": "MM", "enforcement_member": "EM", "call_taker": "CT",
               "acceptor": "AC", "shift_leader": "SL", "dispatcher": "DP", "supervisor": "SV",
               "grid_leader": "GL", "grid_worker": "GW"}


class StaffBook:
    """Issues staff rows with sequential codes, drawn names and fake phone numbers."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(f"{seed}:staff")
        self.rows: list[dict[str, str]] = []
        self.numbers = dict.fromkeys(POST_PREFIX, 0)

    def add(self, post: str, department: str) -> str:
        self.numbers[post] += 1
        code = f"LX-{POST_PREFIX[post]}-{self.numbers[post]:05d}"
        serial = len(self.rows) + 1
        self.rows.append({"code": code, "name": self._name(), "post": post,
                          "department": department,
                          "phone": f"100-{serial // 10000:04d}-{serial % 10000:04d}",
                          "active": "true", "demo": "true"})
        return code

    def _name(self) -> str:
        given = "".join(self.rng.choice(GIVEN_CHARS) for _ in range(self.rng.choice((1, 2, 2))))
        return self.rng.choice(SURNAMES) + given


def squadron_codes() -> list[str]:
    return ([f"squadron_{s.full_code}" for s in STREETS]
            + [code for code, _ in SPECIALISED_SQUADRONS])


def office_staff(book: StaffBook) -> None:
    """Command-centre posts, management members and enforcement members."""
    for post, count in CENTRE_POSTS:
        for _ in range(count):
            book.add(post, "command_centre")
    squadrons = squadron_codes()
    homes = list(MANAGEMENT_HOMES.items())
    rest = MANAGEMENT_MEMBERS - sum(MANAGEMENT_HOMES.values())
    homes += zip(squadrons, apportion(np.ones(len(squadrons)), rest).tolist(), strict=True)
    for department, count in homes:
        for _ in range(count):
            book.add("management_member", department)
    street_squadrons = len(STREETS)
    weights = [2.0] * street_squadrons + [1.5] * (len(squadrons) - street_squadrons)
    for department, count in zip(squadrons, apportion(weights, ENFORCEMENT_MEMBERS, minimum=4),
                                 strict=True):
        for _ in range(int(count)):
            book.add("enforcement_member", department)


def _by_community(grids: Sequence[Grid]) -> dict[str, list[Grid]]:
    out: dict[str, list[Grid]] = {}
    for grid in grids:
        out.setdefault(grid.community, []).append(grid)
    return out


def _leader_groups(grids: list[Grid], extra: int, rng: random.Random) -> list[list[Grid]]:
    """Split a community's grids (in code order) into runs of 1–3 for its leaders."""
    sizes = [1] * (len(grids) - extra)
    for _ in range(extra):
        open_slots = [i for i, s in enumerate(sizes) if s < MAX_GRIDS_PER_LEADER]
        sizes[rng.choice(open_slots)] += 1
    groups, start = [], 0
    for size in sizes:
        groups.append(grids[start:start + size])
        start += size
    return groups


def grid_staff(book: StaffBook, grids: Sequence[Grid], seed: int) -> list[dict[str, str]]:
    """Grid leaders (one per grid, 1–3 grids in one community each) and workers (≥1 per grid,
    more where density is higher); returns the staff_grid rows."""
    rng = random.Random(f"{seed}:leaders")
    communities = _by_community(grids)
    sizes = np.array([len(g) for g in communities.values()])
    spare = sizes - np.ceil(sizes / MAX_GRIDS_PER_LEADER).astype(int)
    extras = apportion(sizes.astype(float), len(grids) - GRID_LEADERS, maximum=spare)
    links = []
    for (community, members), extra in zip(communities.items(), extras, strict=True):
        office = f"street_office_{community[:9]}"
        for group in _leader_groups(members, int(extra), rng):
            code = book.add("grid_leader", office)
            links += [(g.code, "leader", code) for g in group]
    workers = apportion([g.density for g in grids], GRID_WORKERS, minimum=1)
    for grid, count in zip(grids, workers, strict=True):
        for _ in range(int(count)):
            links.append((grid.code, "worker", book.add("grid_worker",
                                                        f"street_office_{grid.street}")))
    links.sort()
    return [{"staff_code": s, "grid_code": g, "role": r} for g, r, s in links]


# -- writing -------------------------------------------------------------------------------------
def write_csv(path: Path, fields: Sequence[str], rows: Iterable[dict[str, str]]) -> int:
    """Write rows as UTF-8 CSV with ``\\n`` line ends; returns the row count."""
    rows = list(rows)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def generate(out_dir: Path = OUT_DIR, seed: int = DEFAULT_SEED,
             boundaries: Path = SHIPPED_BOUNDARIES,
             classes_csv: Path = CLASSES_CSV) -> dict[str, int]:
    """Write every demo catalogue into ``out_dir``; returns rows written per file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    classes = read_classes(classes_csv)
    grids = read_grids(boundaries)
    items, domains = power_items(seed)
    book = StaffBook(seed)
    office_staff(book)
    links = grid_staff(book, grids, seed)
    outputs = {
        "departments.csv": (DEPARTMENT_FIELDS, departments()),
        "power_items.csv": (POWER_FIELDS, items),
        "class_routes.csv": (ROUTE_FIELDS, class_routes(classes)),
        "class_powers.csv": (CLASS_POWER_FIELDS, class_powers(classes, items, domains)),
        "staff.csv": (STAFF_FIELDS, book.rows),
        "staff_grids.csv": (STAFF_GRID_FIELDS, links),
        "grid_area_classes.csv": (AREA_CLASS_FIELDS, area_classes(grids)),
    }
    return {name: write_csv(out_dir / name, fields, rows)
            for name, (fields, rows) in outputs.items()}


# -- vocabulary (demo) ---------------------------------------------------------------------------
# Names are built as "对{subject}{act}[情节严重]的行政处罚" and "{measure}{object}"; laws are real
# titles, article numbers are drawn at random (demo).

SPECIALISED_SQUADRONS = (
    ("squadron_mobile", "机动中队"),
    ("squadron_spoil", "渣土管理中队"),
    ("squadron_advertising", "户外广告中队"),
    ("squadron_river", "河道执法中队"),
    ("squadron_night", "夜间巡查中队"),
    ("squadron_construction", "建设工程执法中队"),
    ("squadron_order", "市容秩序中队"),
    ("squadron_sanitation", "环境卫生执法中队"),
    ("squadron_water", "水务执法中队"),
)

QUALIFIERS = ("", "情节严重")
COERCIVE_MEASURES = ("查封", "扣押", "查封、扣押")


def _d(key: str, laws: str, articles: int, subjects: str, acts: str) -> Domain:
    return Domain(key, tuple(laws.split()), articles, tuple(subjects.split()), tuple(acts.split()))


DOMAINS: dict[str, tuple[Domain, ...]] = {
    "hcb": (
        _d("planning", "中华人民共和国城乡规划法 江苏省城乡规划条例", 68,
           "建设单位 个人 施工单位 房地产开发企业 物业服务企业 房屋所有权人 房屋使用人",
           "未取得建设工程规划许可证进行建设 未按照建设工程规划许可证的规定进行建设 "
           "擅自改变建筑物使用性质 未经批准进行临时建设 未按照批准内容进行临时建设 "
           "临时建筑物超过批准期限不拆除 擅自在屋顶搭建建筑物 擅自改变建筑物外立面 "
           "擅自占用规划绿地进行建设 未按规定报送竣工验收资料"),
        _d("construction", "中华人民共和国建筑法 中华人民共和国招标投标法 江苏省建筑市场管理条例",
           80, "建设单位 施工单位 监理单位 勘察单位 设计单位 招标代理机构 注册执业人员",
           "未取得施工许可证擅自施工 将工程发包给不具有相应资质的单位 转包或者违法分包工程 "
           "超越资质等级承揽工程 允许其他单位以本单位名义承揽工程 未按规定办理工程质量监督手续 "
           "明示或者暗示降低工程质量 未按规定签订书面合同 应当招标而未招标 出借资质证书"),
        _d("quality", "建设工程质量管理条例 建设工程安全生产管理条例 民用建筑节能条例", 80,
           "建设单位 施工单位 监理单位 检测机构 设计单位 预拌混凝土生产企业 起重机械安装单位",
           "未组织竣工验收擅自交付使用 使用不合格的建筑材料 未按照工程建设强制性标准施工 "
           "未对建筑材料进行检验 出具虚假检测报告 未按规定设置安全防护设施 未编制专项施工方案 "
           "未按规定执行建筑节能标准 未按规定报送竣工验收备案材料 擅自修改施工图设计文件"),
        _d("real_estate", "城市房地产开发经营管理条例 商品房销售管理办法 房地产经纪管理办法", 42,
           "房地产开发企业 房地产经纪机构 房地产经纪人员 房地产估价机构 出租人 商品房销售代理机构",
           "未取得资质证书从事房地产开发经营 未取得商品房预售许可证预售商品房 "
           "未按规定公示商品房销售信息 发布虚假房源信息 擅自划转客户交易结算资金 "
           "未按规定办理备案手续 未按规定出具书面告知材料 将不符合出租条件的房屋出租 "
           "隐瞒重要事实签订合同 违规收取费用"),
        _d("property", "物业管理条例 江苏省物业管理条例", 67,
           "物业服务企业 建设单位 业主 物业使用人 业主委员会",
           "擅自改变共用设施用途 擅自占用挖掘物业管理区域内道路场地 "
           "擅自利用物业共用部位进行经营 未按规定移交物业管理资料 将全部物业管理一并委托他人 "
           "挪用专项维修资金 未按规定配置物业管理用房 未履行安全防范义务 拒不移交物业服务用房 "
           "擅自改变房屋承重结构"),
        _d("gas", "城镇燃气管理条例 江苏省燃气管理条例", 53,
           "燃气经营企业 燃气用户 燃气燃烧器具经营者 施工单位 餐饮经营单位 瓶装燃气供应站",
           "未取得燃气经营许可证从事燃气经营活动 向未取得燃气经营许可证的单位供气 "
           "擅自操作公用燃气阀门 擅自安装改装拆除户内燃气设施 在燃气设施保护范围内从事危害活动 "
           "未按规定对燃气设施进行检查维护 为非自有气瓶充装燃气 使用不合格燃气燃烧器具 "
           "未按规定设置燃气设施保护装置 倒灌瓶装燃气"),
        _d("municipal", "城镇排水与污水处理条例 城市道路管理条例 城市供水条例", 45,
           "排水户 施工单位 建设单位 污水处理设施运营单位 供水单位 个人",
           "未取得排水许可向城镇排水设施排放污水 未按照许可内容排放污水 "
           "擅自拆除改动城镇排水设施 向城镇排水设施倾倒垃圾渣土 未按规定进行雨污分流 "
           "擅自挖掘城市道路 擅自占用城市道路 损坏城市道路设施 擅自改装拆除城市公共供水设施 "
           "在城市公共供水管道上直接装泵抽水"),
    ),
    "csb": (
        _d("culture", "互联网上网服务营业场所管理条例 娱乐场所管理条例 营业性演出管理条例", 50,
           "上网服务营业场所经营单位 娱乐场所 演出经营主体 出版物零售单位 体育经营活动单位",
           "擅自从事经营活动 接纳未成年人进入营业场所 在规定的营业时间以外营业 "
           "未按规定悬挂警示标志 变更名称地址未办理变更手续"),
    ),
    "caeb": (
        _d("appearance", "城市市容和环境卫生管理条例 江苏省城市市容和环境卫生管理条例", 39,
           "临街单位 个体工商户 经营者 个人 物业服务企业 责任单位 餐饮经营者",
           "在临街建筑物阳台外晾晒物品 擅自在街道两侧堆放物料 超出门窗外墙摆卖物品 "
           "在建筑物设施以及树木上涂写刻画 擅自张贴悬挂宣传品 不履行门前市容环境卫生责任 "
           "乱扔果皮纸屑 擅自设置摊点"),
        _d("waste", "城市生活垃圾管理办法 中华人民共和国固体废物污染环境防治法", 44,
           "单位 个人 生活垃圾收集运输单位 生活垃圾处置单位 餐厨垃圾产生单位 物业服务企业",
           "随意倾倒抛洒堆放生活垃圾 未按规定分类投放生活垃圾 将餐厨垃圾交由无资质单位处置 "
           "未按规定时间地点收运生活垃圾 混装混运已分类的生活垃圾 生活垃圾运输车辆未密闭 "
           "擅自关闭拆除生活垃圾处置设施"),
        _d("spoil", "城市建筑垃圾管理规定", 26,
           "施工单位 建设单位 运输单位 个人 运输车辆驾驶人 消纳场所经营单位",
           "未经核准擅自处置建筑垃圾 随意倾倒抛撒建筑垃圾 将建筑垃圾交给未经核准的单位运输 "
           "运输建筑垃圾时沿途丢弃遗撒 涂改倒卖出租出借处置核准文件 未及时清运建筑垃圾 "
           "在建筑垃圾中混入生活垃圾"),
        _d("greening", "城市绿化条例 江苏省城市绿化管理条例", 30,
           "单位 个人 施工单位 绿化养护单位 建设单位",
           "擅自砍伐城市树木 擅自移植城市树木 损坏城市绿化设施 擅自占用城市绿化用地 "
           "损害古树名木 在绿地内擅自设置广告设施 未经同意修剪城市树木"),
        _d("advertising", "城市市容和环境卫生管理条例 江苏省城市市容和环境卫生管理条例", 39,
           "广告设置单位 广告发布者 商户 个人 招牌设置人",
           "未经批准擅自设置大型户外广告 未按批准要求设置户外广告 户外广告设施破损未及时维修 "
           "擅自设置招牌标识 散发张贴非法小广告 设置占道广告牌 利用灯杆擅自悬挂广告"),
        _d("roads", "城市道路管理条例", 45,
           "单位 个人 经营者 施工单位 废品收购经营者",
           "擅自占用城市道路从事经营活动 在城市道路上堆放物料 占用挖掘城市道路未设置明显标志 "
           "在城市道路上洗车 擅自在人行道上停放非机动车 占用城市道路收购废品"),
        _d("air", "中华人民共和国大气污染防治法 中华人民共和国环境噪声污染防治法", 64,
           "餐饮服务经营者 个人 施工单位 露天烧烤经营者 单位",
           "在未配套设立专用烟道的商住综合楼内新建餐饮项目 未安装油烟净化设施 "
           "在城市人口集中地区露天烧烤食品 露天焚烧落叶垃圾 夜间进行产生噪声污染的建筑施工作业"),
    ),
    "drb": (
        _d("prices", "中华人民共和国价格法 价格违法行为行政处罚规定", 40,
           "经营者 行业协会 价格中介机构",
           "不执行政府指导价政府定价 不按规定明码标价 哄抬价格 利用虚假的价格手段诱骗交易 "
           "捏造散布涨价信息"),
    ),
    "msb": (
        _d("food", "中华人民共和国食品安全法 中华人民共和国食品安全法实施条例", 150,
           "食品生产者 食品经营者 餐饮服务提供者 食用农产品销售者 集中交易市场开办者 "
           "网络食品交易第三方平台提供者 食品添加剂生产者 学校食堂",
           "未取得食品生产经营许可从事食品生产经营活动 生产经营超过保质期的食品 "
           "用非食品原料生产食品 生产经营腐败变质的食品 未按规定建立进货查验记录制度 "
           "未按规定对从业人员进行健康检查 生产经营无标签的预包装食品 未按规定清洗消毒餐具饮具 "
           "安排未取得健康证明的人员从事接触直接入口食品的工作 未按规定贮存食品"),
        _d("drugs", "中华人民共和国药品管理法", 155,
           "药品零售企业 药品批发企业 医疗机构 药品上市许可持有人 个人 药品网络销售者",
           "未取得药品经营许可证销售药品 销售假药 销售劣药 从无资质企业购进药品 "
           "未按规定凭处方销售处方药 未按规定储存药品 未遵守药品经营质量管理规范 伪造药品购销记录 "
           "未按规定配备执业药师 擅自变更经营地址"),
        _d("devices", "医疗器械监督管理条例", 107,
           "医疗器械经营企业 医疗器械使用单位 医疗器械注册人 个人 医疗器械网络交易服务平台",
           "未经许可从事第三类医疗器械经营活动 经营未取得注册证的医疗器械 "
           "经营不符合强制性标准的医疗器械 未按规定建立进货查验记录制度 使用过期失效的医疗器械 "
           "未按规定备案从事第二类医疗器械经营 未按规定储存运输医疗器械 未按规定开展不良事件监测"),
        _d("cosmetics", "化妆品监督管理条例", 80,
           "化妆品经营者 美容美发机构 化妆品注册人备案人 电子商务平台经营者 受托生产企业",
           "经营变质或者超过使用期限的化妆品 经营未经注册的特殊化妆品 未按规定建立进货查验记录制度 "
           "更改化妆品使用期限 在经营中拆分销售化妆品 经营标签不符合规定的化妆品 "
           "未按规定贮存化妆品 使用禁用原料生产化妆品"),
        _d("equipment", "中华人民共和国特种设备安全法 特种设备安全监察条例", 101,
           "特种设备使用单位 特种设备生产单位 特种设备经营单位 电梯维护保养单位 检验检测机构 "
           "气瓶充装单位 特种设备作业人员",
           "使用未经定期检验的特种设备 未按规定办理使用登记 使用非法生产的特种设备 "
           "未按规定配备安全管理人员 未按规定进行经常性维护保养 特种设备存在严重事故隐患仍继续使用 "
           "销售未经检验的特种设备 未建立特种设备安全技术档案"),
        _d("product_quality", "中华人民共和国产品质量法", 74,
           "生产者 销售者 网络交易平台经营者 仓储服务提供者 产品质量检验机构 认证机构",
           "生产销售不符合安全标准的产品 在产品中掺杂掺假 以假充真以次充好 "
           "生产国家明令淘汰的产品 销售失效变质的产品 伪造产品产地 冒用认证标志等质量标志 "
           "产品标识不符合规定 伪造检验结果"),
        _d("metrology", "中华人民共和国计量法 中华人民共和国计量法实施细则", 64,
           "集贸市场经营者 加油站经营者 眼镜制配者 定量包装商品生产者 计量器具使用者 计量检定机构",
           "使用不合格的计量器具 破坏计量器具准确度 使用未经检定的强制检定计量器具 "
           "定量包装商品净含量不符合规定 伪造计量数据 制造销售未经型式批准的计量器具 "
           "使用非法定计量单位 未按规定申请强制检定"),
        _d("standards", "中华人民共和国标准化法", 45,
           "企业 社会团体 生产者 销售者 进口商",
           "生产不符合强制性标准的产品 未公开执行的产品标准 企业标准低于强制性标准 "
           "标准编号不符合规定 销售不符合强制性标准的产品 拒不纠正标准违法行为"),
        _d("advertising", "中华人民共和国广告法", 74,
           "广告主 广告经营者 广告发布者 广告代言人 互联网信息服务提供者 公共场所管理者 医疗机构",
           "发布虚假广告 发布违反禁止性规定的广告 未经审查发布医疗广告 在广告中使用绝对化用语 "
           "发布未显著标明的互联网广告 违规发布药品广告 违规发布保健食品广告 "
           "利用未成年人作广告代言 明知违法仍提供广告服务"),
        _d("trademarks", "中华人民共和国商标法 中华人民共和国专利法", 73,
           "经营者 商标使用人 商标代理机构 网络服务提供者 印刷企业",
           "销售侵犯注册商标专用权的商品 伪造擅自制造注册商标标识 将未注册商标冒充注册商标使用 "
           "使用违反禁止性规定的标志 假冒专利 违规使用驰名商标字样 违规从事商标代理 "
           "擅自改变注册商标"),
        _d("registration", "中华人民共和国市场主体登记管理条例", 53,
           "市场主体 公司 个体工商户 农民专业合作社 分支机构 外国企业常驻代表机构",
           "未经设立登记从事经营活动 提交虚假材料取得登记 未按规定办理变更登记 "
           "未按规定公示年度报告 未将营业执照置于住所显著位置 伪造涂改出租出借营业执照 "
           "虚报注册资本 抽逃出资"),
        _d("unlicensed", "无证无照经营查处办法", 17,
           "个人 单位 流动摊贩 为无证无照经营提供条件的当事人",
           "从事无照经营 从事无证经营 明知无证无照经营仍提供生产经营场所 "
           "明知无证无照经营仍提供仓储条件 拒绝阻碍查处无证无照经营"),
        _d("competition", "中华人民共和国反不正当竞争法", 33,
           "经营者 电子商务经营者 有奖销售经营者 商业贿赂行为人 侵犯商业秘密行为人",
           "实施混淆行为 进行虚假商业宣传 实施商业贿赂 侵犯商业秘密 违规进行有奖销售 "
           "损害竞争对手商业信誉 利用技术手段妨碍其他经营者网络产品"),
        _d("consumers", "中华人民共和国消费者权益保护法 侵害消费者权益行为处罚办法", 63,
           "经营者 网络交易经营者 预付卡发卡经营者 美容美发经营者 商品零售经营者 服务提供者",
           "拒绝履行退货义务 侵害消费者个人信息 作虚假或者引人误解的宣传 对消费者进行侮辱诽谤 "
           "不依法履行七日无理由退货义务 格式条款含有不公平不合理规定 "
           "无理拒绝消费者合理要求 未按规定出具购货凭证 违规收取预付款"),
        _d("ecommerce", "中华人民共和国电子商务法 网络交易监督管理办法", 89,
           "电子商务经营者 电子商务平台经营者 网络直播营销经营者 社交电商经营者 平台内经营者",
           "未公示营业执照信息 虚构交易编造用户评价 搭售商品未以显著方式提示 "
           "未按规定保存商品和服务信息 对平台内经营者进行不合理限制 擅自删除消费者评价 "
           "未按规定显示信息 违规收取押金"),
        _d("certification", "中华人民共和国认证认可条例 检验检测机构资质认定管理办法", 76,
           "认证机构 检验检测机构 获证企业 认证咨询机构",
           "超出批准范围从事认证活动 出具虚假检验检测报告 未取得资质认定出具检验检测数据 "
           "目录内产品未经认证擅自出厂销售 伪造冒用认证证书 转让认证证书 未按规定使用认证标志"),
        _d("contracts", "合同行政监督管理办法", 25,
           "经营者 中介机构 格式条款提供方 合同当事人",
           "利用合同格式条款免除自身责任 利用合同实施欺诈 为他人利用合同实施违法行为提供证明 "
           "违规使用合同示范文本 利用合同格式条款加重对方责任"),
    ),
}

#: Objects of coercive measures per department: (domain key, objects).
COERCIVE_OBJECTS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "caeb": (
        ("appearance", ("占道经营的物品", "用于违法设摊的工具")),
        ("advertising", ("违法设置的户外广告设施",)),
        ("spoil", ("违法运输建筑垃圾的车辆",)),
        ("air", ("露天烧烤的工具设备",)),
    ),
    "drb": (("prices", ("与价格违法行为有关的财物", "与价格违法行为有关的账簿资料")),),
    "msb": (
        ("food", ("不符合食品安全标准的食品", "违法使用的食品原料和食品添加剂",
                  "用于违法生产经营食品的工具设备")),
        ("drugs", ("可能危害人体健康的药品", "假药劣药及其原料辅料")),
        ("devices", ("不符合法定要求的医疗器械",)),
        ("cosmetics", ("不符合强制性国家标准的化妆品",)),
        ("equipment", ("存在严重事故隐患的特种设备", "达到报废条件的特种设备")),
        ("product_quality", ("不符合安全标准的产品", "用于生产假冒伪劣产品的原辅材料")),
        ("metrology", ("不合格的计量器具",)),
        ("trademarks", ("侵犯注册商标专用权的商品", "伪造的注册商标标识")),
        ("registration", ("无照经营的场所",)),
        ("unlicensed", ("用于无证无照经营的工具设备原材料",)),
        ("competition", ("与不正当竞争行为有关的财物",)),
        ("advertising", ("涉嫌违法广告的物品",)),
        ("ecommerce", ("涉嫌违法的网络交易商品",)),
        ("consumers", ("侵害消费者权益的商品",)),
        ("standards", ("不符合强制性标准的产品",)),
        ("certification", ("未经认证擅自出厂销售的产品",)),
    ),
}

SURNAMES = tuple(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
    "龚邵万钱严覃武戴莫孔向汤"
)
GIVEN_CHARS = tuple(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉力斌宇鹏浩凯健俊峰"
    "晨雪琳婷颖欣怡佳慧倩丹蕾璐晶燕云莉玲梅琴雯宁志国庆民春海林波鑫亮飞彬昊翔博智晓"
    "瑞嘉振宏德新锋正永涵睿轩泽晗思诗梓雨馨子"
)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m etl.catalogues", description=__doc__
                                     .split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--boundaries", type=Path, default=SHIPPED_BOUNDARIES)
    args = parser.parse_args(argv)
    for name, count in generate(args.out, args.seed, args.boundaries).items():
        print(f"{args.out / name}: {count:,} rows")


if __name__ == "__main__":  # pragma: no cover
    main()
