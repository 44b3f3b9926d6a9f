"""Static catalogs the fleet simulator draws from: devices, cities, networks, apps, texts.

Popularity weights are relative, not percentages. Every value is invented or
public knowledge (marketing model names, city centres, carrier address blocks);
nothing here describes a real person.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One phone model: brand, OS family, screen, and how popular it is (rank-ordered)."""

    brand: str
    model: str
    os_name: str
    os_versions: tuple[str, ...]
    width_px: int
    height_px: int
    screen_in: float
    hardware_version: str


@dataclass(frozen=True, slots=True)
class CitySpec:
    """A mainland city centre, its relative population and its resident-id area code."""

    name: str
    lat: float
    lon: float
    weight: float
    scatter_km: float
    area_code: str


# Ordered by popularity; fleet.py applies a Zipf-like weight 1 / rank**1.1.
MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        "Apple", "iPhone 15", "iOS", ("17.4.1", "17.5.1", "17.6.1"), 1179, 2556, 6.1, "A3092"
    ),
    ModelSpec(
        "HUAWEI", "Mate 60 Pro", "HarmonyOS", ("4.0.0", "4.2.0"), 1260, 2720, 6.82, "ALN-AL00"
    ),
    ModelSpec("Xiaomi", "Redmi K70", "Android", ("14",), 1440, 3200, 6.67, "23113RKC6C"),
    ModelSpec("OPPO", "Reno11", "Android", ("14",), 1080, 2412, 6.7, "PJH110"),
    ModelSpec("vivo", "X100", "Android", ("14",), 1260, 2800, 6.78, "V2309A"),
    ModelSpec("HONOR", "90", "Android", ("13", "14"), 1200, 2664, 6.7, "REA-AN00"),
    ModelSpec(
        "Apple", "iPhone 13", "iOS", ("16.7.8", "17.4.1", "17.5.1"), 1170, 2532, 6.1, "A2634"
    ),
    ModelSpec("Xiaomi", "Xiaomi 14", "Android", ("14",), 1200, 2670, 6.36, "23127PN0CC"),
    ModelSpec("HUAWEI", "nova 11", "HarmonyOS", ("3.0.0", "4.0.0"), 1084, 2412, 6.7, "FOA-AL00"),
    ModelSpec("Apple", "iPhone 15 Pro Max", "iOS", ("17.5.1", "17.6.1"), 1290, 2796, 6.7, "A3108"),
    ModelSpec("OPPO", "A2 Pro", "Android", ("13", "14"), 1080, 2412, 6.7, "PJG110"),
    ModelSpec("vivo", "Y78", "Android", ("13",), 1080, 2400, 6.64, "V2271A"),
    ModelSpec(
        "Xiaomi", "Redmi Note 13 Pro", "Android", ("13", "14"), 1220, 2712, 6.67, "2312DRA50C"
    ),
    ModelSpec("HUAWEI", "P60", "HarmonyOS", ("3.1.0", "4.0.0"), 1220, 2700, 6.67, "LNA-AL00"),
    ModelSpec("HONOR", "X50", "Android", ("13",), 1200, 2652, 6.78, "ALI-AN00"),
    ModelSpec("Apple", "iPhone 14 Pro", "iOS", ("16.7.8", "17.5.1"), 1179, 2556, 6.1, "A2892"),
    ModelSpec("vivo", "iQOO 12", "Android", ("14",), 1260, 2800, 6.78, "V2307A"),
    ModelSpec("OPPO", "Find X7", "Android", ("14",), 1264, 2780, 6.78, "PHZ110"),
    ModelSpec(
        "HUAWEI", "Mate 50", "HarmonyOS", ("3.0.0", "3.1.0", "4.0.0"), 1224, 2700, 6.7, "CET-AL00"
    ),
    ModelSpec("Xiaomi", "Redmi 12C", "Android", ("12", "13"), 720, 1650, 6.71, "22120RN86C"),
    ModelSpec(
        "Apple", "iPhone 12", "iOS", ("15.8.2", "16.7.8", "17.5.1"), 1170, 2532, 6.1, "A2404"
    ),
    ModelSpec("HONOR", "Magic6", "Android", ("14",), 1200, 2664, 6.78, "BVL-AN00"),
    ModelSpec("vivo", "S18", "Android", ("14",), 1260, 2800, 6.78, "V2323A"),
    ModelSpec("OPPO", "Reno10", "Android", ("13", "14"), 1080, 2412, 6.7, "PHV110"),
    ModelSpec("HUAWEI", "nova 12", "HarmonyOS", ("4.0.0",), 1084, 2412, 6.7, "BLK-AL00"),
    ModelSpec("Apple", "iPhone 11", "iOS", ("15.8.2", "17.5.1"), 828, 1792, 6.1, "A2223"),
    ModelSpec("HONOR", "Play 50", "Android", ("13",), 720, 1612, 6.56, "DNN-AN00"),
    ModelSpec("OnePlus", "12", "Android", ("14",), 1440, 3168, 6.82, "PJD110"),
    ModelSpec("Samsung", "Galaxy S24", "Android", ("14",), 1080, 2340, 6.2, "SM-S9210"),
    ModelSpec("realme", "GT5", "Android", ("13", "14"), 1240, 2772, 6.74, "RMX3820"),
    ModelSpec("Meizu", "21", "Android", ("14",), 1440, 3200, 6.55, "M481Q"),
    ModelSpec("Xiaomi", "Xiaomi 13", "Android", ("13", "14"), 1080, 2400, 6.36, "2211133C"),
)

# Firmware naming per brand: (format with {v} = os_version, build suffixes).
FIRMWARE: dict[str, tuple[str, tuple[str, ...]]] = {
    "Apple": ("iOS {v}", ("21F90", "21G93", "21E236", "20H343")),
    "HUAWEI": ("HarmonyOS {v}", ("126(C00E125R6P2)", "168(C00E160R2P5)", "202(C00E200R1P3)")),
    "Xiaomi": ("Xiaomi HyperOS 1.0.{v}", ("0.UNKCNXM", "0.UNNCNXM", "2.UMRCNXM")),
    "OPPO": ("ColorOS 14.0 Android {v}", ("_11_A.24", "_11_C.15", "_11_F.08")),
    "vivo": ("OriginOS 4 Android {v}", ("PD2309_A_14.0.15.3.W10", "PD2271_A_13.1.8.5.W10")),
    "HONOR": ("MagicOS 7.2 Android {v}", ("7.2.0.168(C00E160R5P3)", "8.0.0.126(C00E125R3P1)")),
    "OnePlus": ("ColorOS 14.0 Android {v}", ("_11_A.17",)),
    "Samsung": ("One UI 6.1 Android {v}", ("S9210ZCS2AXE1",)),
    "realme": ("realme UI 5.0 Android {v}", ("_11_C.12",)),
    "Meizu": ("Flyme 10.5 Android {v}", ("10.5.0.1A",)),
}

BROWSERS: dict[str, tuple[str, ...]] = {
    "Apple": ("Safari", "Safari", "Safari", "QQ Browser", "UC Browser"),
    "HUAWEI": ("Huawei Browser", "Huawei Browser", "QQ Browser", "UC Browser", "Quark"),
    "Xiaomi": ("Mi Browser", "Mi Browser", "QQ Browser", "Quark", "Chrome"),
    "OPPO": ("HeyTap Browser", "HeyTap Browser", "UC Browser", "QQ Browser"),
    "vivo": ("vivo Browser", "vivo Browser", "QQ Browser", "UC Browser"),
    "HONOR": ("Honor Browser", "Honor Browser", "QQ Browser", "Quark"),
}
DEFAULT_BROWSERS: tuple[str, ...] = ("Chrome", "Chrome", "QQ Browser", "UC Browser")
PLUGINS: tuple[str, ...] = ("Android System WebView", "AdBlock", "Baidu Translate", "Tampermonkey")

# Brand OUIs for MAC addresses and home routers.
OUIS: dict[str, tuple[str, ...]] = {
    "Apple": ("F0:18:98", "3C:22:FB", "A4:83:E7", "BC:D0:74"),
    "HUAWEI": ("00:E0:FC", "28:6E:D4", "48:DB:50", "AC:E2:15"),
    "Xiaomi": ("64:09:80", "F8:A4:5F", "50:EC:50", "28:6C:07"),
    "OPPO": ("A4:3D:78", "2C:5B:B8", "E4:47:90"),
    "vivo": ("50:29:F5", "DC:55:83", "88:6A:B1"),
    "HONOR": ("00:9A:CD", "5C:0C:0E", "F4:B1:9C"),
}
DEFAULT_OUIS: tuple[str, ...] = ("94:65:2D", "8C:EC:4B", "F4:F5:DB")
ROUTER_OUIS: tuple[str, ...] = ("14:CF:92", "50:BD:5F", "D4:EE:07", "00:E0:FC", "64:09:80")
SSID_PATTERNS: tuple[str, ...] = (
    "ChinaNet-{x}",
    "CMCC-{x}",
    "TP-LINK_{x}",
    "MERCURY_{x}",
    "HUAWEI-{x}",
    "Xiaomi_{x}",
    "{surname}jia",
    "{surname}_home_5G",
    "FAST_{x}",
)
PUBLIC_SSIDS: tuple[str, ...] = ("ChinaNet", "CMCC-WEB", "i-Shanghai", "Starbucks", "KFC_FREE_WIFI")

CITIES: tuple[CitySpec, ...] = (
    CitySpec("Chongqing", 29.5630, 106.5516, 32.1, 8.0, "500103"),
    CitySpec("Shanghai", 31.2304, 121.4737, 24.9, 8.0, "310115"),
    CitySpec("Beijing", 39.9042, 116.4074, 21.9, 8.0, "110105"),
    CitySpec("Chengdu", 30.5728, 104.0668, 21.4, 7.0, "510104"),
    CitySpec("Guangzhou", 23.1291, 113.2644, 18.8, 7.0, "440106"),
    CitySpec("Shenzhen", 22.5431, 114.0579, 17.7, 6.0, "440304"),
    CitySpec("Tianjin", 39.3434, 117.3616, 13.9, 6.0, "120103"),
    CitySpec("Wuhan", 30.5928, 114.3055, 13.7, 6.0, "420106"),
    CitySpec("Xi'an", 34.3416, 108.9398, 13.0, 6.0, "610113"),
    CitySpec("Suzhou", 31.2990, 120.5853, 12.9, 5.0, "320505"),
    CitySpec("Zhengzhou", 34.7466, 113.6254, 12.8, 5.0, "410105"),
    CitySpec("Hangzhou", 30.2741, 120.1551, 12.4, 6.0, "330106"),
    CitySpec("Changsha", 28.2282, 112.9388, 10.4, 5.0, "430104"),
    CitySpec("Dongguan", 23.0207, 113.7518, 10.5, 5.0, "441900"),
    CitySpec("Qingdao", 36.0671, 120.3826, 10.3, 5.0, "370212"),
    CitySpec("Harbin", 45.8038, 126.5350, 9.9, 5.0, "230103"),
    CitySpec("Hefei", 31.8206, 117.2272, 9.6, 4.0, "340104"),
    CitySpec("Ningbo", 29.8683, 121.5440, 9.6, 4.0, "330212"),
    CitySpec("Foshan", 23.0215, 113.1214, 9.6, 4.0, "440604"),
    CitySpec("Nanjing", 32.0603, 118.7969, 9.4, 5.0, "320106"),
    CitySpec("Jinan", 36.6512, 117.1201, 9.4, 4.0, "370102"),
    CitySpec("Shenyang", 41.8057, 123.4315, 9.1, 4.0, "210102"),
    CitySpec("Changchun", 43.8171, 125.3235, 9.1, 4.0, "220102"),
    CitySpec("Nanning", 22.8170, 108.3665, 8.8, 4.0, "450103"),
    CitySpec("Kunming", 24.8801, 102.8329, 8.5, 4.0, "530102"),
    CitySpec("Fuzhou", 26.0745, 119.2965, 8.4, 4.0, "350102"),
    CitySpec("Dalian", 38.9140, 121.6147, 7.4, 4.0, "210202"),
    CitySpec("Xiamen", 24.4798, 118.0894, 7.0, 3.5, "350203"),
    CitySpec("Nanchang", 28.6829, 115.8582, 6.3, 3.5, "360102"),
    CitySpec("Guiyang", 26.6470, 106.6302, 6.0, 3.5, "520102"),
    CitySpec("Taiyuan", 37.8706, 112.5489, 5.3, 3.5, "140105"),
    CitySpec("Lanzhou", 36.0611, 103.8343, 4.4, 3.0, "620102"),
    CitySpec("Urumqi", 43.8256, 87.6168, 4.1, 3.0, "650102"),
    CitySpec("Hohhot", 40.8424, 111.7490, 3.5, 3.0, "150102"),
    CitySpec("Haikou", 20.0440, 110.1999, 2.9, 3.0, "460106"),
    CitySpec("Yinchuan", 38.4872, 106.2309, 2.9, 3.0, "640104"),
    CitySpec("Xining", 36.6171, 101.7782, 2.5, 2.5, "630103"),
    CitySpec("Lhasa", 29.6500, 91.1000, 0.9, 2.0, "540102"),
)

# Mainland China bounding box (lat_min, lat_max, lon_min, lon_max).
MAINLAND_BOX: tuple[float, float, float, float] = (18.0, 53.6, 73.5, 135.1)

# Carrier address blocks: (first octet, second octet low, high) per access kind.
BROADBAND_V4: tuple[tuple[int, int, int], ...] = (
    (58, 32, 63),
    (59, 32, 63),
    (60, 0, 31),
    (61, 128, 191),
    (113, 64, 127),
    (115, 192, 223),
    (125, 64, 95),
    (180, 96, 127),
    (183, 0, 63),
    (218, 0, 31),
    (220, 160, 191),
    (222, 64, 95),
    (221, 192, 223),
    (123, 112, 127),
)
MOBILE_V4: tuple[tuple[int, int, int], ...] = (
    (39, 128, 191),
    (111, 0, 63),
    (112, 0, 63),
    (117, 128, 191),
    (120, 192, 255),
    (223, 64, 95),
    (36, 96, 127),
    (42, 48, 55),
    (223, 104, 107),
)
# China Telecom, China Unicom, China Mobile IPv6 allocations.
V6_PREFIXES: tuple[str, ...] = ("240e", "2408", "2409")

# Time zones: almost everyone is on Beijing time.
TIME_ZONES: tuple[tuple[str, int, float], ...] = (
    ("Asia/Shanghai", 8 * 3600_000, 0.975),
    ("Asia/Urumqi", 6 * 3600_000, 0.01),
    ("Asia/Hong_Kong", 8 * 3600_000, 0.007),
    ("Asia/Tokyo", 9 * 3600_000, 0.004),
    ("Asia/Singapore", 8 * 3600_000, 0.004),
)

# The product's own apps (the publishers): (app id, web domain, versions newest first).
APPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("com.sossen.energy", "m.sossen.com", ("3.8.2", "3.8.1", "3.7.0", "3.5.4")),
    ("com.sossen.microplatform", "wx.sossen.com", ("2.4.0", "2.3.1", "2.1.9")),
)
APP_WEIGHTS: tuple[float, ...] = (0.82, 0.18)

# Installed-app catalog: (package name, relative popularity).
INSTALLED_APPS: tuple[tuple[str, float], ...] = (
    ("com.tencent.mm", 100),
    ("com.eg.android.AlipayGphone", 90),
    ("com.ss.android.ugc.aweme", 75),
    ("com.taobao.taobao", 70),
    ("com.tencent.mobileqq", 55),
    ("com.xunmeng.pinduoduo", 60),
    ("com.jingdong.app.mall", 50),
    ("com.sankuai.meituan", 55),
    ("com.autonavi.minimap", 50),
    ("com.smile.gifmaker", 45),
    ("tv.danmaku.bili", 35),
    ("com.ss.android.article.news", 30),
    ("com.netease.cloudmusic", 30),
    ("com.tencent.qqmusic", 25),
    ("com.kugou.android", 22),
    ("com.baidu.searchbox", 30),
    ("com.UCMobile", 15),
    ("com.tencent.mtt", 18),
    ("com.sdu.didi.psnger", 30),
    ("ctrip.android.view", 22),
    ("com.tencent.tmgp.sgame", 25),
    ("com.miHoYo.Yuanshen", 10),
    ("com.zhihu.android", 20),
    ("com.xingin.xhs", 35),
    ("com.dianping.v1", 15),
    ("me.ele", 30),
    ("com.tencent.qqlive", 25),
    ("com.qiyi.video", 22),
    ("com.youku.phone", 15),
    ("com.achievo.vipshop", 10),
    ("com.tencent.wework", 20),
    ("com.alibaba.android.rimet", 25),
    ("com.ss.android.lark", 8),
    ("com.tencent.weread", 8),
    ("com.chinamworld.main", 15),
    ("com.icbc", 18),
    ("cmb.pb", 18),
    ("com.unionpay", 15),
    ("com.MobileTicket", 25),
    ("com.tmri.app.main", 20),
    ("com.hpbr.bosszhipin", 12),
    ("com.lemon.lv", 15),
    ("com.meitu.meiyancamera", 10),
    ("com.baidu.BaiduMap", 20),
    ("com.sina.weibo", 30),
    ("com.tencent.map", 8),
    ("com.kuaishou.nebula", 18),
    ("com.ss.android.ugc.aweme.lite", 15),
    ("com.taobao.idlefish", 20),
    ("com.tmall.wireless", 12),
    ("com.baidu.netdisk", 20),
    ("com.tencent.androidqqmail", 8),
    ("com.netease.mail", 6),
    ("com.tencent.tmgp.pubgmhd", 12),
    ("com.wuba", 8),
    ("com.lianjia.beike", 6),
    ("com.shizhuang.duapp", 8),
    ("com.dragon.read", 15),
    ("com.kmxs.reader", 8),
    ("com.tencent.karaoke", 8),
    ("com.duokan.reader", 3),
    ("com.cainiao.wireless", 12),
    ("com.ximalaya.ting.android", 10),
    ("com.hupu.games", 4),
    ("com.douban.frodo", 5),
    ("com.moji.mjweather", 10),
    ("com.ganji.android", 2),
    ("com.youdao.dict", 6),
    ("com.tencent.docs", 6),
    ("com.kingsoft.moffice_pro", 10),
    ("cn.wps.moffice_eng", 12),
    ("com.greenpoint.android.mc10086.activity", 12),
    ("com.sinovatech.unicom.ui", 8),
    ("com.ct.client", 8),
    ("com.bankcomm.Bankcomm", 6),
    ("com.android.bankabc", 8),
    ("com.chinarailway.ticketingHDS", 4),
    ("com.hellobike.atlas", 8),
    ("com.mobike.mobikeapp", 3),
    ("com.tongcheng.android", 6),
    ("com.Qunar", 6),
    ("com.sankuai.movie", 6),
    ("com.tencent.gamehelper.smoba", 6),
    ("com.ss.android.article.video", 10),
    ("com.yuewen.cooperate.xiaomi", 2),
    ("com.sohu.inputmethod.sogou", 15),
    ("com.iflytek.inputmethod", 12),
    ("com.baidu.input", 8),
    ("com.eastmoney.android.berlin", 6),
    ("com.hexin.plat.android", 6),
    ("com.ideashower.readitlater.pro", 1),
    ("com.keep.kirin", 6),
    ("com.mt.mtxx.mtxx", 8),
    ("com.anjuke.android.app", 4),
    ("com.cmbchina.ccd.pluto.cmbActivity", 8),
    ("com.jd.jrapp", 8),
    ("com.nio.nioapp", 2),
    ("com.xiaopeng.mycarinfo", 1),
    ("com.byd.bydautolink", 2),
    ("com.teslamotors.tesla", 2),
    ("com.chargerlink.app", 2),
    ("com.telaidian.app", 2),
)
PREINSTALLED: dict[str, tuple[str, ...]] = {
    "HUAWEI": ("com.huawei.appmarket", "com.huawei.browser", "com.huawei.health"),
    "Xiaomi": ("com.xiaomi.market", "com.android.browser", "com.mi.health"),
    "OPPO": ("com.heytap.market", "com.heytap.browser", "com.heytap.health"),
    "vivo": ("com.bbk.appstore", "com.vivo.browser", "com.vivo.health"),
    "HONOR": ("com.hihonor.appmarket", "com.hihonor.browser", "com.hihonor.health"),
    "Apple": ("com.apple.mobilesafari", "com.apple.Health"),
}

SURNAMES: tuple[str, ...] = (
    "wang",
    "li",
    "zhang",
    "liu",
    "chen",
    "yang",
    "huang",
    "zhao",
    "wu",
    "zhou",
    "xu",
    "sun",
    "ma",
    "zhu",
    "hu",
    "guo",
    "he",
    "lin",
    "luo",
    "gao",
)
GIVEN_NAMES: tuple[str, ...] = (
    "wei",
    "fang",
    "na",
    "min",
    "jing",
    "lei",
    "qiang",
    "jun",
    "yang",
    "yan",
    "jie",
    "tao",
    "ming",
    "chao",
    "xiuying",
    "hui",
    "ling",
    "hao",
    "yu",
    "xin",
)
MAIL_DOMAINS: tuple[str, ...] = (
    "qq.com",
    "163.com",
    "126.com",
    "sina.com",
    "gmail.com",
    "foxmail.com",
)
PHONE_PREFIXES: tuple[str, ...] = (
    "130",
    "131",
    "132",
    "133",
    "134",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "177",
    "180",
    "181",
    "182",
    "183",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "198",
    "199",
)

# Page paths on the apps' domains; placeholders are filled per page view.
PAGES: tuple[str, ...] = (
    "/home",
    "/home?tab=recommend",
    "/station/list?page={n}",
    "/station/detail?id={n}",
    "/station/detail?id={n}&tab=overview",
    "/battery/status?device_no=SS{n}",
    "/energy/report/daily?date=2024-{mm}-{dd}",
    "/energy/report/monthly?month=2024-{mm}",
    "/order/list?status=paid&page={p}",
    "/order/detail?order_id=SO2024{n}",
    "/user/profile",
    "/help/faq?q=charging",
    "/news/article/{n}",
    "/map/nearby?radius=3000",
    "/pay/result?ok=1",
    "/device/list",
    "/settings/privacy",
    "/coupon/list",
    "/invite/rules",
    "/search?kw=inverter",
)
PII_PAGES: tuple[str, ...] = (
    "/user/bind-phone?phone={phone}",
    "/login?redirect=%2Fhome&email={email}",
    "/map/nearby?lat={lat}&lng={lon}&radius=2000",
    "/user/profile?uid={user_id}&phone={phone}",
    "/invite?from={phone}&channel=wechat",
    "/device/bind?imei={imei}&sn=SS{n}",
    "/pay/result?order=SO2024{n}&id_card={id_card}",
    "/feedback?contact={email}&phone={phone}",
    "/station/detail?id={n}&lat={lat}&lng={lon}",
    "/account/verify?name={name}&id_card={id_card}",
)

CRASHES: tuple[str, ...] = (
    "java.lang.NullPointerException: Attempt to invoke virtual method 'java.lang.String "
    "android.content.Context.getPackageName()' on a null object reference\n"
    "\tat com.sossen.energy.ui.StationActivity.onResume(StationActivity.java:{line})\n"
    "\tat android.app.Activity.performResume(Activity.java:8135)",
    "java.lang.IllegalStateException: Fragment MapFragment not attached to a context.\n"
    "\tat com.sossen.energy.map.MapFragment.onLocation(MapFragment.kt:{line})",
    "java.lang.OutOfMemoryError: Failed to allocate a 8294412 byte allocation with 4194304 free\n"
    "\tat android.graphics.Bitmap.nativeCreate(Native Method)",
    "kotlin.UninitializedPropertyAccessException: lateinit property binding has not been "
    "initialized\n"
    "\tat com.sossen.energy.report.ReportFragment.onDestroyView(ReportFragment.kt:{line})",
    "SIGSEGV (signal 11) fault addr 0x0000007a3c2f1000 in libsossen_ble.so+0x1a2c4",
    "Fatal error: Unexpectedly found nil while unwrapping an Optional value: file "
    "SossenEnergy/StationViewController.swift, line {line}",
)
PII_CRASHES: tuple[str, ...] = (
    "java.lang.IllegalStateException: device {imei} not registered for user {user_id}\n"
    "\tat com.sossen.energy.device.DeviceRegistry.lookup(DeviceRegistry.java:{line})",
    "retrofit2.HttpException: HTTP 500 POST https://api.sossen.com/v2/user/bind?phone={phone}\n"
    "\tat retrofit2.KotlinExtensions$await$2$2.onResponse(KotlinExtensions.kt:53)",
    "org.json.JSONException: Value {email} at email of type java.lang.String cannot be "
    "converted to JSONObject\n\tat org.json.JSON.typeMismatch(JSON.java:{line})",
    'java.lang.NumberFormatException: For input string: "{lat},{lon}"\n'
    "\tat com.sossen.energy.map.LocationParser.parse(LocationParser.java:{line})",
    "android.database.sqlite.SQLiteConstraintException: UNIQUE constraint failed: "
    "users.phone ({phone}) (code 2067)",
    "java.net.SocketTimeoutException: failed to connect to api.sossen.com/120.79.18.{n} "
    "(port 443) from /{ip} (port 41352) after 15000ms",
)
SYSTEM_EVENTS: tuple[tuple[str, str], ...] = (
    ("network_change", "network changed: {old} -> {new}"),
    ("low_memory", "onTrimMemory level=15, available {mem} MB"),
    ("battery_low", "battery low: {battery}%"),
    ("screen_off", "screen off, app moved to background"),
    ("app_update", "app updated to {app_version}"),
    ("permission_change", "permission android.permission.ACCESS_FINE_LOCATION changed"),
    ("location_update", "location updated: {lat},{lon} acc={acc}m"),
    ("wifi_connected", "wifi connected: SSID={ssid} BSSID={bssid}"),
    ("bluetooth_toggle", "bluetooth state changed"),
    ("storage_low", "storage low: {free} MB free"),
)
