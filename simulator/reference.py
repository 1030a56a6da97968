"""Reference data of a generated portal: pipelines and their stages, directories, names.

Each pipeline's step conversions carry one visible gap (a step far below the others), so the funnel
report has something to find. Labels come in Russian and English; a portal uses one language.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    status_id: str
    name_ru: str
    name_en: str
    conversion: float = 0.0     # chance to move on from this in-progress stage
    dwell_hours: float = 0.0    # median time spent here
    probability: int = 0


@dataclass(frozen=True)
class Failure:
    status_id: str
    name_ru: str
    name_en: str
    weight: float
    loss_reason: str | None     # UF_CRM_LOSS_REASON option typically recorded with it
    apology: bool = False


@dataclass(frozen=True)
class Pipeline:
    id: int
    name_ru: str
    name_en: str
    share: float                # of new deals
    amount_median: float
    stages: tuple[Stage, ...]
    won: Stage
    failures: tuple[Failure, ...]

    @property
    def entity_id(self) -> str:
        return "DEAL_STAGE" if self.id == 0 else f"DEAL_STAGE_{self.id}"

    def sid(self, code: str) -> str:
        return code if self.id == 0 else f"C{self.id}:{code}"


PIPELINES: tuple[Pipeline, ...] = (
    Pipeline(
        0, "Продажи", "Sales", 0.6, 150_000,
        stages=(
            Stage("NEW", "Новая", "New", 0.84, 36, 10),
            Stage("PREPARATION", "Подготовка документов", "Document preparation", 0.76, 80, 30),
            Stage("PREPAYMENT_INVOICE", "Счёт на предоплату", "Prepayment invoice", 0.36, 140, 50),
            Stage("EXECUTING", "В работе", "In progress", 0.81, 220, 70),
            Stage("FINAL_INVOICE", "Финальный счёт", "Final invoice", 0.88, 90, 90),
        ),
        won=Stage("WON", "Сделка успешна", "Deal won", probability=100),
        failures=(
            Failure("LOSE", "Сделка провалена", "Deal lost", 0.55, "NO_RESPONSE"),
            Failure("APOLOGY", "Анализ причины провала", "Analyse failure", 0.45, "PRICE", apology=True),
        ),
    ),
    Pipeline(
        1, "Крупные клиенты", "Key accounts", 0.25, 900_000,
        stages=(
            Stage("NEW", "Новая заявка", "New request", 0.86, 60, 10),
            Stage("QUALIFICATION", "Квалификация", "Qualification", 0.72, 120, 25),
            Stage("PROPOSAL", "Коммерческое предложение", "Proposal", 0.74, 240, 50),
            Stage("NEGOTIATION", "Переговоры", "Negotiation", 0.41, 320, 75),
        ),
        won=Stage("WON", "Контракт подписан", "Contract signed", probability=100),
        failures=(
            Failure("LOSE", "Отказ", "Lost", 0.4, "NO_RESPONSE"),
            Failure("PRICE", "Дорого", "Too expensive", 0.35, "PRICE"),
            Failure("COMPETITOR", "Ушёл к конкуренту", "Went to a competitor", 0.25, "COMPETITOR"),
        ),
    ),
    Pipeline(
        2, "Повторные продажи", "Repeat sales", 0.15, 60_000,
        stages=(
            Stage("NEW", "Новая", "New", 0.9, 24, 20),
            Stage("OFFER", "Предложение", "Offer", 0.52, 72, 50),
            Stage("INVOICE", "Счёт выставлен", "Invoice sent", 0.86, 96, 80),
        ),
        won=Stage("WON", "Оплачено", "Paid", probability=100),
        failures=(
            Failure("LOSE", "Не купил", "Did not buy", 0.7, "BUDGET"),
            Failure("NOT_TARGET", "Нецелевой", "Not a target client", 0.3, "NOT_TARGET"),
        ),
    ),
)

# Smart invoices (entity type 31) live in their own category with the standard stage codes.
INVOICE_CATEGORY_ID = 3
INVOICE_STAGES = (
    # code, name_ru, name_en, semantics
    ("N", "Новый", "New", None),
    ("S", "Отправлен клиенту", "Sent to client", None),
    ("P", "Оплачен", "Paid", "S"),
    ("D", "Отклонён", "Declined", "F"),
)


def invoice_stage(code: str) -> str:
    return f"DT31_{INVOICE_CATEGORY_ID}:{code}"


LEAD_STATUSES = (
    # status_id, ru, en, semantics (None = in progress)
    ("NEW", "Не обработан", "Unassigned", None),
    ("IN_PROCESS", "В работе", "In progress", None),
    ("PROCESSED", "Обработан", "Processed", None),
    ("CONVERTED", "Качественный лид", "Good lead", "S"),
    ("JUNK", "Некачественный лид", "Junk lead", "F"),
)

SOURCES = (
    ("CALL", "Звонок", "Call", 0.22), ("EMAIL", "Электронная почта", "E-mail", 0.12),
    ("WEB", "Веб-сайт", "Website", 0.25), ("ADVERTISING", "Реклама", "Advertising", 0.12),
    ("PARTNER", "Существующий клиент", "Existing client", 0.1),
    ("RECOMMENDATION", "По рекомендации", "Recommendation", 0.09),
    ("TRADE_SHOW", "Выставка", "Trade show", 0.05), ("OTHER", "Другое", "Other", 0.05),
)

DEAL_TYPES = (("SALE", "Продажа", "Sales"), ("COMPLEX", "Комплексная продажа", "Complex sale"),
              ("GOODS", "Продажа товара", "Goods sale"), ("SERVICES", "Продажа услуги", "Service sale"),
              ("SERVICE", "Сервисное обслуживание", "After-sales service"))

CONTACT_TYPES = (("CLIENT", "Клиенты", "Clients"), ("SUPPLIER", "Поставщики", "Suppliers"),
                 ("PARTNER", "Партнёры", "Partners"), ("OTHER", "Другое", "Other"))

COMPANY_TYPES = (("CUSTOMER", "Клиент", "Client"), ("SUPPLIER", "Поставщик", "Supplier"),
                 ("COMPETITOR", "Конкурент", "Competitor"), ("PARTNER", "Партнёр", "Partner"),
                 ("OTHER", "Другое", "Other"))

INDUSTRIES = (("IT", "Информационные технологии", "Information technology"),
              ("MANUFACTURING", "Производство", "Manufacturing"), ("BANKING", "Банковские услуги", "Banking"),
              ("CONSULTING", "Консалтинг", "Consulting"), ("DELIVERY", "Доставка", "Delivery"),
              ("ENTERTAINMENT", "Развлечения", "Entertainment"), ("GOVERNMENT", "Государство", "Government"),
              ("OTHER", "Другое", "Other"))

EMPLOYEES = (("EMPLOYEES_1", "менее 50", "fewer than 50"), ("EMPLOYEES_2", "50-250", "50-250"),
             ("EMPLOYEES_3", "250-500", "250-500"), ("EMPLOYEES_4", "более 500", "over 500"))

# Departments: (id, parent, ru, en). Sales teams are 3, 4, 5.
DEPARTMENTS = (
    (1, None, "Компания", "Company"),
    (2, 1, "Коммерческая дирекция", "Commercial directorate"),
    (3, 2, "Отдел продаж Москва", "Sales Moscow"),
    (4, 2, "Отдел продаж Регионы", "Sales Regions"),
    (5, 2, "Отдел крупных клиентов", "Key accounts team"),
    (6, 1, "Маркетинг", "Marketing"),
)
SALES_DEPARTMENTS = (3, 4, 5)

MALE_FIRST = ("Александр", "Дмитрий", "Максим", "Сергей", "Андрей", "Алексей", "Артём", "Илья", "Кирилл",
              "Михаил", "Никита", "Роман", "Егор", "Павел", "Владимир", "Денис", "Игорь", "Олег", "Евгений",
              "Антон")
FEMALE_FIRST = ("Анна", "Мария", "Елена", "Ольга", "Наталья", "Татьяна", "Ирина", "Екатерина", "Светлана",
                "Юлия", "Анастасия", "Дарья", "Марина", "Ксения", "Виктория", "Полина", "Алина", "Вера")
SURNAMES = ("Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов",
            "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров",
            "Павлов", "Козлов", "Степанов", "Николаев", "Орлов", "Андреев", "Макаров", "Никитин",
            "Захаров", "Зайцев", "Соловьёв", "Борисов", "Яковлев", "Григорьев", "Романов", "Воробьёв")
MALE_PATRONYMICS = ("Александрович", "Сергеевич", "Андреевич", "Игоревич", "Викторович", "Олегович")
FEMALE_PATRONYMICS = ("Александровна", "Сергеевна", "Андреевна", "Игоревна", "Викторовна", "Олеговна")
LATIN_FIRST = ("John", "Anna", "Peter", "Maria", "David", "Laura", "Thomas", "Sofia", "Mark", "Emma")
LATIN_LAST = ("Smith", "Müller", "Weber", "Rossi", "Schmidt", "Brown", "Meyer", "Novak", "Fischer", "Wagner")
TRANSLIT = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                    ("a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p",
                     "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "sch", "", "y", "", "e", "yu", "ya"),
                    strict=True))

COMPANY_FORMS = ("ООО", "АО", "ИП", "ПАО")
COMPANY_WORDS = ("Альфа", "Вектор", "Гранит", "Северсталь-Сервис", "Техноком", "Меридиан", "Прогресс",
                 "Стройинвест", "Логистик Плюс", "Агро-Юг", "Медиа Групп", "Фармация", "Эталон", "Волга",
                 "Сибирь Трейд", "Дельта", "Импульс", "Орион", "Полюс", "Спектр", "Форвард", "Кристалл")
PRODUCTS = ("поставка оборудования", "внедрение CRM", "сервисный контракт", "лицензии", "обучение персонала",
            "поставка расходников", "аудит", "интеграция 1С", "техподдержка", "пилотный проект")
CITIES = ("Москва", "Санкт-Петербург", "Казань", "Екатеринбург", "Новосибирск", "Нижний Новгород",
          "Самара", "Краснодар", "Ростов-на-Дону", "Пермь")
CHANNELS = ("Прямые продажи", "Партнёр", "Тендер", "Входящий поток", "Холодный обзвон")
POSITIONS_MANAGER = ("Менеджер по продажам", "Старший менеджер по продажам", "Менеджер по работе с клиентами",
                     "Ведущий менеджер")
POSITIONS_CONTACT = ("Директор", "Генеральный директор", "Закупщик", "Главный инженер", "Бухгалтер",
                     "Руководитель отдела", "Менеджер", "Собственник")

# Russian public holidays that the working calendar of the generated team respects (month, day).
HOLIDAYS = ((1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (1, 6), (1, 7), (1, 8), (2, 23), (3, 8), (5, 1), (5, 9),
            (6, 12), (11, 4), (12, 31))
