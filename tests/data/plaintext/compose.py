"""Compose tests/data/plaintext pages (tuning set): story text written for the benchmark, with the chrome real sites put around it (python tests/data/plaintext/compose.py rewrites them)."""
import json
from pathlib import Path
OUT = Path(__file__).resolve().parent
# Each page: list of ("t", title) / ("c", chrome line) / ("p", [sentences]) / ("h", heading)
PAGES = {}

PAGES["en-regional-daily"] = ("en", [
 ("t", "City council approves new cycle lanes after heated debate"),
 ("c", "Skip to main content"), ("c", "Menu"), ("c", "Search"), ("c", "News › Local › Transport"),
 ("c", "By Hannah Cole, Transport Reporter"), ("c", "Wednesday 6 March 2024 17:42 GMT"),
 ("c", "Copy to clipboard"), ("c", "Listen to article"), ("c", "4 min read"),
 ("p", ["The city council voted on Tuesday night to build eleven kilometres of protected cycle lanes across the centre, ending months of argument between residents and business owners."]),
 ("p", ["The plan passed by 31 votes to 22 after a debate that lasted almost five hours.", "Work on the first section, along the river embankment, is due to start in June."]),
 ("c", "The new lanes will link the railway station with the university campus. Photograph: Ben Marsh/Alamy"),
 ("p", ["Councillor Priya Shah, who chairs the transport committee, said the lanes would make the city safer for children cycling to school."]),
 ("p", ["“We have waited far too long for this, and every year of delay has cost lives,” she told the chamber."]),
 ("c", "Most popular"), ("c", "Man charged after police chase through town centre"), ("c", "Schools close early as storm approaches"),
 ("h", "Shops fear lost trade"),
 ("p", ["Some traders on the high street warned that removing parking spaces would drive customers to out-of-town retail parks."]),
 ("p", ["The chamber of commerce said it would ask the council to review the scheme after its first year.", "The council has promised to publish monthly figures on footfall and journey times."]),
 ("p", ["The scheme will cost about £14 million, most of it paid by a government grant for active travel."]),
 ("c", "Do you support the new cycle lanes?"), ("c", "Yes"), ("c", "No"), ("c", "Not sure"), ("c", "Vote"), ("c", "View results"),
 ("c", "Comments are closed on this article."),
 ("c", "Topics"), ("c", "Cycling"), ("c", "Local politics"),
 ("c", "© 2024 Northern Post Media Ltd. All rights reserved."),
 ("c", "150 150 admin"),
])

PAGES["fr-quotidien-regional"] = ("fr", [
 ("t", "Nantes : la ligne de tramway vers l’aéroport reportée à 2028"),
 ("c", "Accueil / Actualité / Pays de la Loire"), ("c", "Abonnés"), ("c", "Par Camille Durand"),
 ("c", "Le 14/03/2024 à 07h15 - Modifié le 14/03/2024 à 09h40"), ("c", "Écouter"), ("c", "Copier le lien"),
 ("p", ["La métropole de Nantes a annoncé mercredi que la nouvelle ligne de tramway vers l’aéroport ne serait pas mise en service avant 2028, soit deux ans plus tard que prévu."]),
 ("p", ["En cause, la hausse du coût des travaux et des recours déposés par des riverains de la commune de Bouguenais."]),
 ("c", "Le chantier devait démarrer au printemps. © Franck Dubray / Ouest-France"),
 ("p", ["« Nous préférons prendre le temps de bien faire plutôt que de lancer un chantier que nous ne pourrions pas financer », a expliqué la vice-présidente chargée des mobilités."]),
 ("c", "Newsletter Nantes"), ("c", "Recevez chaque matin l’essentiel de l’actualité nantaise."), ("c", "Je m’inscris"),
 ("h", "Un surcoût de 60 millions d’euros"),
 ("p", ["Le budget du projet est passé de 180 à 240 millions d’euros en trois ans, selon les chiffres présentés en conseil métropolitain."]),
 ("p", ["L’opposition dénonce un projet mal préparé et réclame un audit indépendant.", "La majorité assure que l’État financera une partie du surcoût."]),
 ("p", ["En attendant, une navette de bus à haut niveau de service reliera la gare à l’aérogare toutes les dix minutes à partir de septembre."]),
 ("c", "Cet article vous a-t-il été utile ?"), ("c", "Oui"), ("c", "Non"),
 ("c", "Signaler une erreur"), ("c", "Ouest-Hebdo : les plus partagés"),
 ("c", "Les plus lus"), ("c", "Accident sur le périphérique : deux blessés graves"),
 ("c", "Mentions légales - Politique de confidentialité - Gérer mes cookies"),
])

PAGES["de-nachrichtenportal"] = ("de", [
 ("t", "Bremen: Hafenbetrieb führt Vier-Tage-Woche für Schichtarbeiter ein"),
 ("c", "Startseite > Wirtschaft > Bremen"), ("c", "Stand: 05.03.2024 14:20 Uhr"), ("c", "Lesezeit: 3 Minuten"),
 ("c", "Audio herunterladen"), ("c", "Link kopieren"),
 ("p", ["Der Bremer Hafenbetreiber will ab dem Sommer eine Vier-Tage-Woche für alle Beschäftigten im Schichtdienst einführen."]),
 ("p", ["Die Arbeitszeit sinkt dabei von 38 auf 35 Stunden pro Woche, der Lohn bleibt gleich.", "Das Unternehmen reagiert damit auf den Mangel an Fachkräften in der Logistik."]),
 ("c", "Containerbrücken im Bremerhavener Hafen. Bild: picture alliance / Ingo Wagner"),
 ("p", ["„Wir müssen als Arbeitgeber attraktiver werden, sonst finden wir keine Leute mehr“, sagte die Personalchefin bei der Vorstellung des Modells."]),
 ("c", "Mehr Nachrichten aus Bremen"), ("c", "Bremer Senat beschließt neues Schulgesetz"),
 ("h", "Gewerkschaft begrüßt den Schritt"),
 ("p", ["Die Gewerkschaft Verdi sprach von einem wichtigen Signal für die gesamte Branche."]),
 ("p", ["Sie fordert allerdings, dass auch die Beschäftigten der Subunternehmen einbezogen werden.", "Darüber soll im Herbst verhandelt werden."]),
 ("c", "Dieses Thema im Programm: Buten un binnen, 5. März 2024, 19:30 Uhr"),
 ("c", "Schlagwörter: Hafen, Arbeit, Bremerhaven"),
 ("c", "Sendung verpasst?"), ("c", "Jetzt in der Mediathek ansehen"),
 ("c", "Impressum | Datenschutz | Barrierefreiheit"),
])

PAGES["es-diario-digital"] = ("es", [
 ("t", "Valencia prohíbe los cruceros de gran tamaño en el puerto a partir de 2026"),
 ("c", "Inicio / Comunitat Valenciana"), ("c", "Redacción"), ("c", "07 mar 2024 - 11:05 CET"), ("c", "Actualizado a las 12:30"),
 ("c", "Guardar"), ("c", "Enviar por correo"),
 ("p", ["El Ayuntamiento de Valencia aprobó este jueves una ordenanza que impedirá atracar en el puerto a los cruceros de más de 300 metros de eslora a partir de 2026."]),
 ("p", ["La medida busca reducir la contaminación del aire en los barrios cercanos al puerto, según explicó la concejala de Medio Ambiente."]),
 ("c", "Un crucero atracado en el puerto de Valencia, en una imagen de archivo. EFE/Ana Escobar"),
 ("p", ["Las navieras calculan que la decisión afectará a unas 90 escalas al año.", "La patronal del sector ha anunciado que recurrirá la ordenanza ante los tribunales."]),
 ("c", "Más información"), ("c", "El turismo de cruceros bate récords en el Mediterráneo"),
 ("h", "Los comerciantes, divididos"),
 ("p", ["Los comerciantes del centro histórico temen perder ingresos, mientras que las asociaciones vecinales celebran la medida."]),
 ("p", ["«Llevamos años respirando el humo de estos barcos, que tienen los motores encendidos todo el día», afirmó el portavoz de una asociación de El Grau."]),
 ("c", "¿Estás de acuerdo con la prohibición?"), ("c", "Sí"), ("c", "No"),
 ("c", "Únete a nuestro canal de WhatsApp"),
 ("c", "Archivado en: Cruceros, Valencia, Contaminación"),
 ("c", "Aviso legal · Política de cookies · Contacto"),
])

PAGES["pt-portal-noticias"] = ("pt", [
 ("t", "Lisboa vai plantar dez mil árvores até ao fim do próximo ano"),
 ("c", "Início > Lisboa > Ambiente"), ("c", "Ana Ribeiro"), ("c", "12 mar 2024, 08:45"),
 ("c", "Partilhar no Facebook"), ("c", "Partilhar no X"), ("c", "Copiar link"),
 ("p", ["A Câmara Municipal de Lisboa anunciou esta terça-feira que vai plantar dez mil árvores em ruas e jardins da cidade até ao final do próximo ano."]),
 ("p", ["O plano dá prioridade às freguesias com menos sombra e com temperaturas mais altas durante o verão.", "Cada árvore terá um sistema de rega gota a gota durante os primeiros três anos."]),
 ("c", "Novas árvores na Avenida da Liberdade. Foto: Tiago Petinga / Lusa"),
 ("p", ["Segundo o vereador do Ambiente, o investimento ronda os oito milhões de euros e será financiado em parte por fundos europeus."]),
 ("c", "Publicidade"),
 ("h", "Moradores pedem mais espaços verdes"),
 ("p", ["Várias associações de moradores saudaram o anúncio, mas lembram que muitas árvores plantadas nos últimos anos secaram por falta de manutenção."]),
 ("p", ["A autarquia garante que contratou mais jardineiros para acompanhar as novas plantações."]),
 ("c", "Leia também"), ("c", "Seca: barragens do Alentejo abaixo dos 40 por cento"),
 ("c", "Siga-nos no Instagram"),
 ("c", "Termos de utilização | Privacidade | Estatuto editorial"),
])

PAGES["vi-bao-dien-tu"] = ("vi", [
 ("t", "Hà Nội thí điểm xe buýt điện trên 10 tuyến nội đô"),
 ("c", "Thời sự › Giao thông"), ("c", "Thứ Ba, 12/3/2024, 15:30 (GMT+7)"), ("c", "GMT+7"),
 ("c", "Nghe bài viết"), ("c", "Sao chép liên kết"),
 ("p", ["Sở Giao thông vận tải Hà Nội cho biết từ tháng 4 thành phố sẽ thí điểm đưa xe buýt điện vào hoạt động trên 10 tuyến trong khu vực nội đô."]),
 ("p", ["Mỗi tuyến sẽ có từ 8 đến 12 xe, chạy từ 5 giờ sáng đến 22 giờ hằng ngày.", "Giá vé được giữ nguyên như xe buýt thông thường."]),
 ("c", "Xe buýt điện chạy thử trên phố Tràng Tiền. Ảnh: Giang Huy"),
 ("p", ["Theo đại diện Sở, việc chuyển đổi sang xe điện giúp giảm khí thải và tiếng ồn tại các tuyến phố đông dân cư."]),
 ("h", "Cần thêm trạm sạc"),
 ("p", ["Các chuyên gia cho rằng thành phố cần xây thêm trạm sạc tại các điểm đầu cuối để xe không phải quay về bãi giữa ca."]),
 ("p", ["Doanh nghiệp vận hành cho biết đã lắp đặt 40 trụ sạc và sẽ bổ sung thêm trong năm nay."]),
 ("c", "Bạn có thường xuyên đi xe buýt không?"), ("c", "Có"), ("c", "Không"),
 ("c", "Ý kiến của bạn"), ("c", "Xem nhiều nhất"),
 ("c", "Ông Trần Văn Nam"),
])

PAGES["ru-novostnoy-sayt"] = ("ru", [
 ("t", "В Казани откроют первую линию легкого метро в 2027 году"),
 ("c", "Главная / Новости / Общество"), ("c", "12 марта 2024, 10:15"), ("c", "Анна Петрова"),
 ("c", "Поделиться"), ("c", "Скопировать ссылку"), ("c", "Время чтения: 3 мин."),
 ("p", ["Власти Казани объявили, что первая линия легкого метро соединит аэропорт с центром города и откроется в 2027 году."]),
 ("p", ["Длина линии составит около двадцати километров, на ней построят восемь станций.", "Поезда будут ходить каждые пять минут в часы пик."]),
 ("c", "Строительство станции на улице Баумана. Фото: Иван Смирнов / ТАСС"),
 ("p", ["По словам мэра, проект обойдется примерно в сорок миллиардов рублей, часть средств выделит федеральный бюджет."]),
 ("c", "Реклама"), ("c", "Читайте также"), ("c", "Цены на такси в Казани выросли на треть"),
 ("h", "Жители ждут разгрузки дорог"),
 ("p", ["Жители спальных районов надеются, что новая линия сократит пробки на главных магистралях города."]),
 ("p", ["Эксперты отмечают, что успех проекта будет зависеть от удобных пересадок на автобусы и трамваи."]),
 ("c", "Подписывайтесь на наш канал в Telegram"),
 ("c", "Нашли ошибку? Выделите текст и нажмите Ctrl+Enter"),
 ("c", "Самое читаемое"),
 ("c", "© 2024 Городские новости. Все права защищены."),
])

PAGES["ja-news-site"] = ("ja", [
 ("t", "札幌市、冬季の除雪予算を過去最大に"),
 ("c", "ホーム > 北海道 > 社会"), ("c", "2024年3月12日 18時30分"), ("c", "シェア"), ("c", "リンクをコピー"),
 ("p", ["札幌市は12日、来年度の除雪予算を過去最大となる約300億円にすると発表した。", "大雪による交通の混乱が相次いだことを受けた措置だ。"]),
 ("p", ["市によると、除雪車の台数を増やすほか、生活道路の排雪回数を年2回から3回に増やす。"]),
 ("c", "除雪作業が行われる札幌市内の道路（12日、共同）"),
 ("p", ["市長は記者会見で「市民の安全な暮らしを守るため、できることはすべてやる」と述べた。"]),
 ("c", "広告"), ("c", "関連記事"), ("c", "北海道で記録的な大雪、列車の運休相次ぐ"),
 ("h", "人手不足が課題に"),
 ("p", ["一方で、除雪作業を担う建設会社では運転手の高齢化が進み、人手の確保が課題となっている。"]),
 ("p", ["市は作業員の待遇を改善するため、委託料の引き上げも検討している。"]),
 ("c", "この記事をシェアする"), ("c", "ランキング"),
 ("c", "Copyright © 2024 北海道ニュース All rights reserved."),
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
            sentences.extend(value); lines.append(("" if lang == "ja" else " ").join(value))
    (OUT / f"{name}.txt").write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    expected = {"page": f"{name}.txt", "lang": lang, "title": title, "sentences": sentences,
                "chrome": chrome, "headings": headings}
    (OUT / f"{name}.expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
print(len(PAGES))
