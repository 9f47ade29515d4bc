"""Compose tests/data/plaintext-heldout pages: the held-out set (run once after the cleaner was
frozen, never tuned on). Story text written for the benchmark, chrome in the style of other
real sites than the tuning set (python tests/data/plaintext-heldout/compose.py rewrites them)."""
import json
from pathlib import Path

OUT = Path(__file__).resolve().parent
PAGES = {}

PAGES["en-wire-portal"] = ("en", [
 ("t", "Drought forces Panama Canal to cut daily crossings again"),
 ("c", "World"), ("c", "Americas"), ("c", "Updated 2 hours ago"), ("c", "Save"), ("c", "Gift this article"),
 ("c", "Share on LinkedIn"), ("c", "Follow"),
 ("p", ["The Panama Canal will reduce the number of ships allowed through each day from 27 to 22 starting next month, its administrator said on Friday, as a drought keeps water levels in its main reservoir near record lows."]),
 ("p", ["Shipping companies have already added weeks to some routes between Asia and the east coast of the United States to avoid delays."]),
 ("c", "A cargo ship passes through the Agua Clara locks. Getty Images"),
 ("p", ["“We are managing the water we have, not the water we would like to have,” the administrator told reporters."]),
 ("p", ["Rainfall in the canal's watershed has been about 30 percent below average this year.", "Each crossing uses about 200 million litres of fresh water."]),
 ("c", "Sign in to read the full story"), ("c", "Already a subscriber? Log in"),
 ("h", "Shippers look for alternatives"),
 ("p", ["Some carriers are moving containers by rail across the isthmus, while others have started sending ships around Cape Horn."]),
 ("p", ["Analysts expect freight rates on affected routes to rise by up to ten percent over the coming months."]),
 ("c", "More from World"), ("c", "Floods displace thousands in southern Brazil"), ("c", "Chile votes on new constitution draft"),
 ("c", "Was this article helpful?"), ("c", "Thumbs up"), ("c", "Thumbs down"),
 ("c", "Reporting by Elena Ruiz in Panama City"),
 ("c", "Our Standards: The Trust Principles."),
 ("c", "Terms of use · Privacy · Cookie settings · Accessibility"),
])

PAGES["de-regionalzeitung"] = ("de", [
 ("t", "Freiburg baut größtes Solarfeld Baden-Württembergs"),
 ("c", "Lokales"), ("c", "Freiburg"), ("c", "Plus-Artikel"), ("c", "Max Müller"),
 ("c", "Di, 12. März 2024 um 16:02 Uhr"), ("c", "Merken"), ("c", "Vorlesen"),
 ("p", ["Auf einer ehemaligen Kiesgrube im Westen von Freiburg soll bis Ende nächsten Jahres das größte Solarfeld des Landes entstehen."]),
 ("p", ["Die Anlage wird nach Angaben der Stadtwerke rund 25.000 Haushalte mit Strom versorgen.", "Die Kosten liegen bei etwa 40 Millionen Euro."]),
 ("c", "So soll das Solarfeld aussehen. Visualisierung: Stadtwerke Freiburg"),
 ("p", ["„Wir zeigen, dass die Energiewende auch auf Flächen gelingt, die sonst niemand nutzen kann“, sagte der Oberbürgermeister bei der Vorstellung."]),
 ("c", "Mehr zum Thema:"), ("c", "Stadtwerke erhöhen die Strompreise zum Jahreswechsel"),
 ("h", "Naturschützer sind skeptisch"),
 ("p", ["Der Naturschutzbund befürchtet, dass seltene Vogelarten ihren Lebensraum am See verlieren."]),
 ("p", ["Die Stadt hat zugesagt, einen Teil der Fläche als Schutzgebiet auszuweisen und Nistplätze anzulegen."]),
 ("c", "Artikel verschenken"), ("c", "Zur Startseite"),
 ("c", "Alle Rechte vorbehalten. Vervielfältigung nur mit Genehmigung."),
])

PAGES["es-periodico-nacional"] = ("es", [
 ("t", "Sevilla instala toldos en 200 calles para combatir el calor"),
 ("c", "Andalucía"), ("c", "SEVILLA"), ("c", "Actualizado Martes, 12 marzo 2024 - 13:23"),
 ("c", "Comentar"), ("c", "Compartir en Facebook"), ("c", "Compartir en X"),
 ("p", ["El Ayuntamiento de Sevilla instalará este verano toldos en doscientas calles del centro y de los barrios más expuestos al sol para reducir la temperatura a pie de calle."]),
 ("p", ["Según los técnicos municipales, la sombra puede bajar la sensación térmica hasta en ocho grados durante las horas centrales del día."]),
 ("c", "Toldos en la calle Sierpes, en una imagen de archivo. JOSÉ MANUEL VIDAL"),
 ("p", ["El alcalde explicó que la medida costará cuatro millones de euros y que los toldos se retirarán en octubre."]),
 ("c", "Te puede interesar"), ("c", "Aemet avisa de un verano más caluroso de lo normal"),
 ("h", "Árboles además de toldos"),
 ("p", ["Los ecologistas reclaman que, además de los toldos, se planten árboles en las calles que hoy no tienen ninguna sombra."]),
 ("p", ["El Ayuntamiento asegura que el plan incluye tres mil árboles nuevos en los próximos dos años."]),
 ("c", "Conforme a los criterios de The Trust Project"), ("c", "Saber más"),
 ("c", "Recibe las noticias de tu ciudad en tu correo"),
 ("c", "Mapa web · Aviso legal · Cookies"),
])

PAGES["it-quotidiano-online"] = ("it", [
 ("t", "Bologna, dal primo luglio il limite di 30 all'ora in tutta la città"),
 ("c", "Cronaca"), ("c", "di Giulia Bianchi"), ("c", "12 marzo 2024 | 10:45"), ("c", "Ascolta l'articolo"),
 ("c", "Condividi"), ("c", "Commenta"),
 ("p", ["Dal primo luglio il limite di velocità nella maggior parte delle strade di Bologna scenderà a trenta chilometri orari, come deciso dalla giunta comunale."]),
 ("p", ["Resteranno a cinquanta all'ora soltanto i viali di circonvallazione e alcune strade di scorrimento.", "Le multe saranno applicate dopo un periodo di prova di sei mesi."]),
 ("c", "Un cartello del nuovo limite in via Indipendenza (foto Ansa)"),
 ("p", ["Secondo il Comune, la misura ridurrà gli incidenti gravi e renderà le strade più sicure per pedoni e ciclisti."]),
 ("c", "Leggi anche"), ("c", "Traffico, le città italiane più congestionate"),
 ("h", "Le critiche dei commercianti"),
 ("p", ["Le associazioni dei commercianti temono che i clienti dalla provincia rinuncino a venire in centro."]),
 ("p", ["Il sindaco ha risposto che nelle città europee dove il limite è già in vigore il commercio non ha subito perdite."]),
 ("c", "Riproduzione riservata ©"), ("c", "Iscriviti alla newsletter"),
 ("c", "P.IVA 01234567890"),
])

PAGES["fr-hebdo-en-ligne"] = ("fr", [
 ("t", "Marseille : les calanques limitent l’accès aux visiteurs cet été"),
 ("c", "Société"), ("c", "Provence-Alpes-Côte d’Azur"), ("c", "Publié aujourd’hui à 11h12"),
 ("c", "Temps de lecture : 2 min"), ("c", "Ajouter à mes favoris"), ("c", "Facebook Twitter E-mail"),
 ("p", ["Le parc national des Calanques va limiter à 400 par jour le nombre de visiteurs dans la calanque de Sugiton entre juin et septembre, a annoncé sa direction lundi."]),
 ("p", ["Les promeneurs devront réserver gratuitement leur place sur internet avant de venir.", "Des agents contrôleront les réservations à l’entrée du sentier."]),
 ("c", "La calanque de Sugiton attire jusqu’à 2 500 personnes par jour en été. (Photo Nicolas Vallauri / La Provence)"),
 ("p", ["Selon le parc, la fréquentation massive abîme la végétation et accélère l’érosion des sentiers."]),
 ("c", "À découvrir"), ("c", "Les plus belles plages de la Côte bleue"),
 ("h", "Une mesure qui divise"),
 ("p", ["Les commerçants de Cassis craignent une baisse de la clientèle, tandis que les associations de protection de la nature saluent la décision."]),
 ("p", ["Le dispositif sera évalué à la fin de l’été avant d’être éventuellement étendu à d’autres calanques."]),
 ("c", "Vous avez aimé cet article ?"), ("c", "Abonnez-vous pour soutenir le journalisme local"),
 ("c", "Tous droits réservés"),
])

PAGES["ar-news-site"] = ("ar", [
 ("t", "دبي تفتتح أطول مسار للدراجات الهوائية في المنطقة"),
 ("c", "الرئيسية"), ("c", "أخبار الإمارات"), ("c", "دبي - وام"), ("c", "12 مارس 2024 - 14:30"),
 ("c", "مشاركة"), ("c", "طباعة"),
 ("p", ["افتتحت هيئة الطرق والمواصلات في دبي اليوم مسارا جديدا للدراجات الهوائية يبلغ طوله ثمانين كيلومترا ويربط عددا من الأحياء السكنية بمناطق العمل."]),
 ("p", ["وقالت الهيئة إن المسار مجهز بالإنارة ومحطات للاستراحة والصيانة على طول الطريق.", "ويمكن استخدامه على مدار الساعة طوال أيام الأسبوع."]),
 ("c", "جانب من المسار الجديد (أرشيفية)"),
 ("p", ["وأضافت أن المشروع يهدف إلى تشجيع السكان على استخدام وسائل النقل الصديقة للبيئة وتقليل الازدحام المروري."]),
 ("c", "اقرأ أيضا"), ("c", "افتتاح محطة مترو جديدة في دبي"),
 ("h", "خطط للتوسع"),
 ("p", ["وتعتزم الهيئة زيادة طول شبكة مسارات الدراجات إلى أكثر من ألف كيلومتر بحلول عام 2030."]),
 ("p", ["كما تدرس إطلاق خدمة لتأجير الدراجات الكهربائية في محطات المترو الرئيسية."]),
 ("c", "تابعونا على"), ("c", "الأكثر قراءة"),
 ("c", "جميع الحقوق محفوظة © 2024"),
])

PAGES["zh-news-portal"] = ("zh", [
 ("t", "杭州将新增五百个公共充电站"),
 ("c", "首页 > 新闻 > 本地"), ("c", "2024-03-12 09:15:32"), ("c", "来源：城市日报"), ("c", "分享到："),
 ("c", "字号：大 中 小"),
 ("p", ["杭州市发展和改革委员会12日表示，今年将在全市新增五百个公共充电站，重点覆盖老旧小区和城郊地区。", "预计新增充电桩超过一万个。"]),
 ("p", ["据介绍，新建充电站将优先选址在停车需求较大的居民区周边，方便市民夜间充电。"]),
 ("c", "图为杭州市区一处公共充电站。新华社记者 张三 摄"),
 ("p", ["有关负责人说：“我们希望让每一位新能源汽车车主都能在三公里内找到充电桩。”"]),
 ("c", "相关阅读"), ("c", "新能源汽车销量再创新高"),
 ("h", "电网压力受关注"),
 ("p", ["专家指出，大量充电设施集中使用可能给局部电网带来压力，需要同步推进电网改造。"]),
 ("p", ["电力部门表示，今年将投入二十亿元用于配电网升级。"]),
 ("c", "责任编辑：李四"), ("c", "扫一扫分享本页"),
 ("c", "版权所有 © 2024 城市日报社"),
])

for name, (lang, items) in PAGES.items():
    lines, sentences, chrome, headings = [], [], [], []
    title = None
    for kind, value in items:
        if kind == "t":
            title = value; lines.append(value)
        elif kind == "c":
            chrome.append(value); lines.append(value)
        elif kind == "h":
            headings.append(value); lines.append(value)
        else:
            sentences.extend(value); lines.append(("" if lang in ("ja", "zh") else " ").join(value))
    (OUT / f"{name}.txt").write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    expected = {"page": f"{name}.txt", "lang": lang, "title": title, "sentences": sentences,
                "chrome": chrome, "headings": headings}
    (OUT / f"{name}.expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
print(len(PAGES))
