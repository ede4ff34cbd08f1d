/*
 * The message catalogue (i18n.h): one table per language, indexed by
 * enum eb_msg, and the Accept-Language negotiation. English is the text
 * the pages had before they were translated; a refusal's detailed English
 * reason comes from the policy (identity/policy.h) and the catalogue's
 * EB_MSG_DENY_* are its short form in the other languages.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/i18n.h"

static const char *const en[EB_MSG_COUNT] = {
    [EB_MSG_REFERENCE] = "Reference: {{rid}}",
    [EB_MSG_HELP] = "Need help?",
    [EB_MSG_EMAIL] = "Email",
    [EB_MSG_PHONE] = "Phone",
    [EB_MSG_WEBSITE] = "Help website",
    [EB_MSG_LOGO_ALT] = "{{name}} logo",
    [EB_MSG_DETAILS] = "Details: {{details}}",
    [EB_MSG_EXPIRED_T] = "This sign-in has expired",
    [EB_MSG_EXPIRED] =
        "This sign-in link is no longer valid, or was opened in another "
        "browser. Go back to Settings on your device and sign in again.",
    [EB_MSG_IDP_FAILED_T] = "Your organization's sign-in service had a "
                            "problem",
    [EB_MSG_IDP_FAILED] =
        "We could not complete the sign-in with your organization. Try "
        "again in a few minutes; if it keeps happening, contact your IT "
        "department and give them the reference below.",
    [EB_MSG_NOT_COMPLETED_T] = "Sign-in was not completed",
    [EB_MSG_IDP_CANCELLED] =
        "The sign-in was cancelled or refused by your organization. Go "
        "back to Settings on your device to try again.",
    [EB_MSG_IDP_REFUSED] =
        "Your organization's sign-in service refused the sign-in. Try "
        "again; if it keeps happening, contact your IT department and give "
        "them the details and reference below.",
    [EB_MSG_IDP_DENIED] = "Your organization did not accept this sign-in. "
                          "Go back to Settings on your device to try again.",
    [EB_MSG_BUSY_T] = "Busy",
    [EB_MSG_BUSY] = "The sign-in service is busy. Please try again in a "
                    "moment.",
    [EB_MSG_NOT_STARTED_T] = "Sign-in was not started",
    [EB_MSG_TYPED_INVALID] =
        "The account name sent by your device is not valid. Go back to "
        "Settings on your device and type your work or school email "
        "address again.",
    [EB_MSG_UNAVAILABLE_T] = "Temporarily unavailable",
    [EB_MSG_UNAVAILABLE] = "Please try again in a moment.",
    [EB_MSG_BAD_REQUEST_T] = "Bad request",
    [EB_MSG_MALFORMED] = "The sign-in response was malformed.",
    [EB_MSG_INVALID_REQUEST_T] = "This enrollment request is not valid",
    [EB_MSG_UNKNOWN_CLIENT] = "The device asked for an unknown client.",
    [EB_MSG_BAD_REDIRECT] = "The device asked for a redirect that is not "
                            "registered.",
    [EB_MSG_DENIED_T] = "You can't enroll this device",
    [EB_MSG_DENY_DEVICE_LIMIT] = "You already have as many enrolled devices "
                                 "as your organization allows.",
    [EB_MSG_DENY_GROUPS] = "You are not a member of a group allowed to "
                           "enroll devices, or it could not be checked.",
    [EB_MSG_DENY_DOMAIN] = "Accounts of this domain may not enroll devices "
                           "here.",
    [EB_MSG_DENY_ACCOUNT] = "Your account is not set up for enrolling "
                            "devices here.",
    [EB_MSG_DENY_OTHER] = "Your organization does not allow this account "
                          "to enroll this device.",
    [EB_MSG_HINT_ADMIN] = "Ask your IT administrator to give you access to "
                          "enroll this device.",
    [EB_MSG_HINT_DEVICE_LIMIT] =
        "Remove a device you no longer use (your IT department can retire "
        "it), then enroll this one again.",
    [EB_MSG_HINT_WORK_ACCOUNT] = "Sign in with your work account.",
};

static const char *const de[EB_MSG_COUNT] = {
    [EB_MSG_REFERENCE] = "Referenz: {{rid}}",
    [EB_MSG_HELP] = "Brauchen Sie Hilfe?",
    [EB_MSG_EMAIL] = "E-Mail",
    [EB_MSG_PHONE] = "Telefon",
    [EB_MSG_WEBSITE] = "Hilfe-Website",
    [EB_MSG_LOGO_ALT] = "Logo von {{name}}",
    [EB_MSG_DETAILS] = "Details: {{details}}",
    [EB_MSG_EXPIRED_T] = "Diese Anmeldung ist abgelaufen",
    [EB_MSG_EXPIRED] =
        "Dieser Anmeldelink ist nicht mehr gültig oder wurde in einem "
        "anderen Browser geöffnet. Gehen Sie auf Ihrem Gerät zurück zu den "
        "Einstellungen und melden Sie sich erneut an.",
    [EB_MSG_IDP_FAILED_T] = "Der Anmeldedienst Ihrer Organisation hatte ein "
                            "Problem",
    [EB_MSG_IDP_FAILED] =
        "Die Anmeldung bei Ihrer Organisation konnte nicht abgeschlossen "
        "werden. Versuchen Sie es in einigen Minuten erneut; wenn es "
        "wieder passiert, wenden Sie sich an Ihre IT-Abteilung und nennen "
        "Sie die Referenz unten.",
    [EB_MSG_NOT_COMPLETED_T] = "Die Anmeldung wurde nicht abgeschlossen",
    [EB_MSG_IDP_CANCELLED] =
        "Die Anmeldung wurde abgebrochen oder von Ihrer Organisation "
        "abgelehnt. Gehen Sie auf Ihrem Gerät zurück zu den Einstellungen, "
        "um es erneut zu versuchen.",
    [EB_MSG_IDP_REFUSED] =
        "Der Anmeldedienst Ihrer Organisation hat die Anmeldung abgelehnt. "
        "Versuchen Sie es erneut; wenn es wieder passiert, wenden Sie sich "
        "an Ihre IT-Abteilung und nennen Sie die Details und die Referenz "
        "unten.",
    [EB_MSG_IDP_DENIED] =
        "Ihre Organisation hat diese Anmeldung nicht akzeptiert. Gehen Sie "
        "auf Ihrem Gerät zurück zu den Einstellungen, um es erneut zu "
        "versuchen.",
    [EB_MSG_BUSY_T] = "Ausgelastet",
    [EB_MSG_BUSY] = "Der Anmeldedienst ist ausgelastet. Bitte versuchen Sie "
                    "es gleich noch einmal.",
    [EB_MSG_NOT_STARTED_T] = "Die Anmeldung wurde nicht gestartet",
    [EB_MSG_TYPED_INVALID] =
        "Der von Ihrem Gerät gesendete Kontoname ist ungültig. Gehen Sie "
        "auf Ihrem Gerät zurück zu den Einstellungen und geben Sie Ihre "
        "geschäftliche oder schulische E-Mail-Adresse erneut ein.",
    [EB_MSG_UNAVAILABLE_T] = "Vorübergehend nicht verfügbar",
    [EB_MSG_UNAVAILABLE] = "Bitte versuchen Sie es gleich noch einmal.",
    [EB_MSG_BAD_REQUEST_T] = "Ungültige Anfrage",
    [EB_MSG_MALFORMED] = "Die Antwort der Anmeldung war fehlerhaft.",
    [EB_MSG_INVALID_REQUEST_T] = "Diese Registrierungsanfrage ist ungültig",
    [EB_MSG_UNKNOWN_CLIENT] = "Das Gerät hat einen unbekannten Client "
                              "angefragt.",
    [EB_MSG_BAD_REDIRECT] = "Das Gerät hat eine nicht registrierte "
                            "Weiterleitung angefragt.",
    [EB_MSG_DENIED_T] = "Sie können dieses Gerät nicht registrieren",
    [EB_MSG_DENY_DEVICE_LIMIT] =
        "Sie haben bereits so viele Geräte registriert, wie Ihre "
        "Organisation erlaubt.",
    [EB_MSG_DENY_GROUPS] =
        "Sie sind nicht Mitglied einer Gruppe, die Geräte registrieren "
        "darf, oder dies konnte nicht geprüft werden.",
    [EB_MSG_DENY_DOMAIN] = "Konten dieser Domain dürfen hier keine Geräte "
                           "registrieren.",
    [EB_MSG_DENY_ACCOUNT] = "Ihr Konto ist nicht für die Registrierung von "
                            "Geräten hier eingerichtet.",
    [EB_MSG_DENY_OTHER] = "Ihre Organisation erlaubt diesem Konto nicht, "
                          "dieses Gerät zu registrieren.",
    [EB_MSG_HINT_ADMIN] = "Bitten Sie Ihre IT-Administration um Zugriff, "
                          "um dieses Gerät zu registrieren.",
    [EB_MSG_HINT_DEVICE_LIMIT] =
        "Entfernen Sie ein Gerät, das Sie nicht mehr verwenden (Ihre "
        "IT-Abteilung kann es ausmustern), und registrieren Sie dann dieses "
        "erneut.",
    [EB_MSG_HINT_WORK_ACCOUNT] = "Melden Sie sich mit Ihrem Arbeitskonto "
                                 "an.",
};

static const char *const fr[EB_MSG_COUNT] = {
    [EB_MSG_REFERENCE] = "Référence : {{rid}}",
    [EB_MSG_HELP] = "Besoin d'aide ?",
    [EB_MSG_EMAIL] = "E-mail",
    [EB_MSG_PHONE] = "Téléphone",
    [EB_MSG_WEBSITE] = "Site d'assistance",
    [EB_MSG_LOGO_ALT] = "Logo de {{name}}",
    [EB_MSG_DETAILS] = "Détails : {{details}}",
    [EB_MSG_EXPIRED_T] = "Cette connexion a expiré",
    [EB_MSG_EXPIRED] =
        "Ce lien de connexion n'est plus valide, ou a été ouvert dans un "
        "autre navigateur. Revenez aux Réglages de votre appareil et "
        "connectez-vous à nouveau.",
    [EB_MSG_IDP_FAILED_T] = "Le service de connexion de votre organisation "
                            "a rencontré un problème",
    [EB_MSG_IDP_FAILED] =
        "La connexion auprès de votre organisation n'a pas pu aboutir. "
        "Réessayez dans quelques minutes ; si cela se reproduit, contactez "
        "votre service informatique et donnez-lui la référence ci-dessous.",
    [EB_MSG_NOT_COMPLETED_T] = "La connexion n'a pas abouti",
    [EB_MSG_IDP_CANCELLED] =
        "La connexion a été annulée ou refusée par votre organisation. "
        "Revenez aux Réglages de votre appareil pour réessayer.",
    [EB_MSG_IDP_REFUSED] =
        "Le service de connexion de votre organisation a refusé la "
        "connexion. Réessayez ; si cela se reproduit, contactez votre "
        "service informatique et donnez-lui les détails et la référence "
        "ci-dessous.",
    [EB_MSG_IDP_DENIED] =
        "Votre organisation n'a pas accepté cette connexion. Revenez aux "
        "Réglages de votre appareil pour réessayer.",
    [EB_MSG_BUSY_T] = "Service occupé",
    [EB_MSG_BUSY] = "Le service de connexion est occupé. Veuillez réessayer "
                    "dans un instant.",
    [EB_MSG_NOT_STARTED_T] = "La connexion n'a pas commencé",
    [EB_MSG_TYPED_INVALID] =
        "Le nom de compte envoyé par votre appareil n'est pas valide. "
        "Revenez aux Réglages de votre appareil et saisissez à nouveau "
        "votre adresse e-mail professionnelle ou scolaire.",
    [EB_MSG_UNAVAILABLE_T] = "Temporairement indisponible",
    [EB_MSG_UNAVAILABLE] = "Veuillez réessayer dans un instant.",
    [EB_MSG_BAD_REQUEST_T] = "Requête incorrecte",
    [EB_MSG_MALFORMED] = "La réponse de connexion était mal formée.",
    [EB_MSG_INVALID_REQUEST_T] = "Cette demande d'inscription n'est pas "
                                 "valide",
    [EB_MSG_UNKNOWN_CLIENT] = "L'appareil a demandé un client inconnu.",
    [EB_MSG_BAD_REDIRECT] = "L'appareil a demandé une redirection qui n'est "
                            "pas enregistrée.",
    [EB_MSG_DENIED_T] = "Vous ne pouvez pas inscrire cet appareil",
    [EB_MSG_DENY_DEVICE_LIMIT] =
        "Vous avez déjà autant d'appareils inscrits que votre organisation "
        "le permet.",
    [EB_MSG_DENY_GROUPS] =
        "Vous n'êtes pas membre d'un groupe autorisé à inscrire des "
        "appareils, ou cela n'a pas pu être vérifié.",
    [EB_MSG_DENY_DOMAIN] = "Les comptes de ce domaine ne peuvent pas "
                           "inscrire d'appareils ici.",
    [EB_MSG_DENY_ACCOUNT] = "Votre compte n'est pas configuré pour inscrire "
                            "des appareils ici.",
    [EB_MSG_DENY_OTHER] = "Votre organisation n'autorise pas ce compte à "
                          "inscrire cet appareil.",
    [EB_MSG_HINT_ADMIN] = "Demandez à votre administrateur informatique de "
                          "vous autoriser à inscrire cet appareil.",
    [EB_MSG_HINT_DEVICE_LIMIT] =
        "Retirez un appareil que vous n'utilisez plus (votre service "
        "informatique peut le faire), puis inscrivez de nouveau celui-ci.",
    [EB_MSG_HINT_WORK_ACCOUNT] = "Connectez-vous avec votre compte "
                                 "professionnel.",
};

static const char *const es[EB_MSG_COUNT] = {
    [EB_MSG_REFERENCE] = "Referencia: {{rid}}",
    [EB_MSG_HELP] = "¿Necesita ayuda?",
    [EB_MSG_EMAIL] = "Correo electrónico",
    [EB_MSG_PHONE] = "Teléfono",
    [EB_MSG_WEBSITE] = "Sitio web de ayuda",
    [EB_MSG_LOGO_ALT] = "Logotipo de {{name}}",
    [EB_MSG_DETAILS] = "Detalles: {{details}}",
    [EB_MSG_EXPIRED_T] = "Este inicio de sesión ha caducado",
    [EB_MSG_EXPIRED] =
        "Este enlace de inicio de sesión ya no es válido o se abrió en "
        "otro navegador. Vuelva a Ajustes en su dispositivo e inicie "
        "sesión de nuevo.",
    [EB_MSG_IDP_FAILED_T] = "El servicio de inicio de sesión de su "
                            "organización tuvo un problema",
    [EB_MSG_IDP_FAILED] =
        "No se pudo completar el inicio de sesión con su organización. "
        "Inténtelo de nuevo en unos minutos; si vuelve a ocurrir, póngase "
        "en contacto con su departamento de TI y facilíteles la referencia "
        "de abajo.",
    [EB_MSG_NOT_COMPLETED_T] = "No se completó el inicio de sesión",
    [EB_MSG_IDP_CANCELLED] =
        "Su organización canceló o rechazó el inicio de sesión. Vuelva a "
        "Ajustes en su dispositivo para intentarlo de nuevo.",
    [EB_MSG_IDP_REFUSED] =
        "El servicio de inicio de sesión de su organización rechazó el "
        "inicio de sesión. Inténtelo de nuevo; si vuelve a ocurrir, póngase "
        "en contacto con su departamento de TI y facilíteles los detalles "
        "y la referencia de abajo.",
    [EB_MSG_IDP_DENIED] =
        "Su organización no aceptó este inicio de sesión. Vuelva a Ajustes "
        "en su dispositivo para intentarlo de nuevo.",
    [EB_MSG_BUSY_T] = "Servicio ocupado",
    [EB_MSG_BUSY] = "El servicio de inicio de sesión está ocupado. "
                    "Inténtelo de nuevo en un momento.",
    [EB_MSG_NOT_STARTED_T] = "No se inició el inicio de sesión",
    [EB_MSG_TYPED_INVALID] =
        "El nombre de cuenta enviado por su dispositivo no es válido. "
        "Vuelva a Ajustes en su dispositivo y escriba de nuevo su correo "
        "electrónico del trabajo o de la escuela.",
    [EB_MSG_UNAVAILABLE_T] = "No disponible temporalmente",
    [EB_MSG_UNAVAILABLE] = "Inténtelo de nuevo en un momento.",
    [EB_MSG_BAD_REQUEST_T] = "Solicitud incorrecta",
    [EB_MSG_MALFORMED] = "La respuesta del inicio de sesión no era válida.",
    [EB_MSG_INVALID_REQUEST_T] = "Esta solicitud de inscripción no es "
                                 "válida",
    [EB_MSG_UNKNOWN_CLIENT] = "El dispositivo pidió un cliente desconocido.",
    [EB_MSG_BAD_REDIRECT] = "El dispositivo pidió una redirección que no "
                            "está registrada.",
    [EB_MSG_DENIED_T] = "No puede inscribir este dispositivo",
    [EB_MSG_DENY_DEVICE_LIMIT] =
        "Ya tiene tantos dispositivos inscritos como permite su "
        "organización.",
    [EB_MSG_DENY_GROUPS] =
        "No es miembro de un grupo autorizado a inscribir dispositivos, o "
        "no se pudo comprobar.",
    [EB_MSG_DENY_DOMAIN] = "Las cuentas de este dominio no pueden inscribir "
                           "dispositivos aquí.",
    [EB_MSG_DENY_ACCOUNT] = "Su cuenta no está configurada para inscribir "
                            "dispositivos aquí.",
    [EB_MSG_DENY_OTHER] = "Su organización no permite que esta cuenta "
                          "inscriba este dispositivo.",
    [EB_MSG_HINT_ADMIN] = "Pida a su administrador de TI que le dé acceso "
                          "para inscribir este dispositivo.",
    [EB_MSG_HINT_DEVICE_LIMIT] =
        "Retire un dispositivo que ya no use (su departamento de TI puede "
        "hacerlo) y vuelva a inscribir este.",
    [EB_MSG_HINT_WORK_ACCOUNT] = "Inicie sesión con su cuenta del trabajo.",
};

static const char *const ja[EB_MSG_COUNT] = {
    [EB_MSG_REFERENCE] = "参照番号: {{rid}}",
    [EB_MSG_HELP] = "お困りですか?",
    [EB_MSG_EMAIL] = "メール",
    [EB_MSG_PHONE] = "電話",
    [EB_MSG_WEBSITE] = "ヘルプサイト",
    [EB_MSG_LOGO_ALT] = "{{name}} のロゴ",
    [EB_MSG_DETAILS] = "詳細: {{details}}",
    [EB_MSG_EXPIRED_T] = "このサインインは期限切れです",
    [EB_MSG_EXPIRED] =
        "このサインインのリンクは無効になったか、別のブラウザで開かれまし"
        "た。デバイスの「設定」に戻って、もう一度サインインしてください。",
    [EB_MSG_IDP_FAILED_T] = "組織のサインインサービスで問題が発生しました",
    [EB_MSG_IDP_FAILED] =
        "組織でのサインインを完了できませんでした。数分後にもう一度お試しく"
        "ださい。繰り返し発生する場合は、IT 部門に連絡し、下の参照番号を伝"
        "えてください。",
    [EB_MSG_NOT_COMPLETED_T] = "サインインは完了しませんでした",
    [EB_MSG_IDP_CANCELLED] =
        "サインインはキャンセルされたか、組織によって拒否されました。もう一"
        "度お試しいただくには、デバイスの「設定」に戻ってください。",
    [EB_MSG_IDP_REFUSED] =
        "組織のサインインサービスがサインインを拒否しました。もう一度お試し"
        "ください。繰り返し発生する場合は、IT 部門に連絡し、下の詳細と参照"
        "番号を伝えてください。",
    [EB_MSG_IDP_DENIED] =
        "組織はこのサインインを受け付けませんでした。もう一度お試しいただく"
        "には、デバイスの「設定」に戻ってください。",
    [EB_MSG_BUSY_T] = "混雑しています",
    [EB_MSG_BUSY] = "サインインサービスが混雑しています。しばらくしてから"
                    "もう一度お試しください。",
    [EB_MSG_NOT_STARTED_T] = "サインインは開始されませんでした",
    [EB_MSG_TYPED_INVALID] =
        "デバイスから送信されたアカウント名が無効です。デバイスの「設定」に"
        "戻り、職場または学校のメールアドレスをもう一度入力してください。",
    [EB_MSG_UNAVAILABLE_T] = "一時的に利用できません",
    [EB_MSG_UNAVAILABLE] = "しばらくしてからもう一度お試しください。",
    [EB_MSG_BAD_REQUEST_T] = "不正なリクエスト",
    [EB_MSG_MALFORMED] = "サインインの応答が不正な形式でした。",
    [EB_MSG_INVALID_REQUEST_T] = "この登録リクエストは無効です",
    [EB_MSG_UNKNOWN_CLIENT] = "デバイスが不明なクライアントを要求しました。",
    [EB_MSG_BAD_REDIRECT] = "デバイスが登録されていないリダイレクト先を要求"
                            "しました。",
    [EB_MSG_DENIED_T] = "このデバイスは登録できません",
    [EB_MSG_DENY_DEVICE_LIMIT] =
        "組織が許可する台数のデバイスがすでに登録されています。",
    [EB_MSG_DENY_GROUPS] = "デバイスの登録を許可されたグループのメンバーで"
                           "はないか、それを確認できませんでした。",
    [EB_MSG_DENY_DOMAIN] = "このドメインのアカウントは、ここでデバイスを"
                           "登録できません。",
    [EB_MSG_DENY_ACCOUNT] = "お使いのアカウントは、ここでデバイスを登録する"
                            "ように設定されていません。",
    [EB_MSG_DENY_OTHER] = "組織はこのアカウントによるこのデバイスの登録を"
                          "許可していません。",
    [EB_MSG_HINT_ADMIN] = "このデバイスを登録できるよう、IT 管理者にアクセ"
                          "スを依頼してください。",
    [EB_MSG_HINT_DEVICE_LIMIT] =
        "使わなくなったデバイスを削除してから (IT 部門が廃止できます)、こ"
        "のデバイスをもう一度登録してください。",
    [EB_MSG_HINT_WORK_ACCOUNT] = "職場のアカウントでサインインしてください。",
};

static const struct {
	const char *tag;
	const char *const *msg;
} langs[EB_LANG_COUNT] = {
    [EB_LANG_EN] = {"en", en}, [EB_LANG_DE] = {"de", de},
    [EB_LANG_FR] = {"fr", fr}, [EB_LANG_ES] = {"es", es},
    [EB_LANG_JA] = {"ja", ja},
};

const char *
eb_i18n_tag(enum eb_lang lang)
{
	return (unsigned)lang < EB_LANG_COUNT ? langs[lang].tag : "en";
}

const char *
eb_i18n_raw(enum eb_lang lang, enum eb_msg id)
{
	if ((unsigned)id >= EB_MSG_COUNT || (unsigned)lang >= EB_LANG_COUNT)
		return NULL;
	return langs[lang].msg[id];
}

const char *
eb_i18n_msg(enum eb_lang lang, enum eb_msg id)
{
	const char *s;

	if ((unsigned)id >= EB_MSG_COUNT)
		return "";
	if ((unsigned)lang >= EB_LANG_COUNT)
		lang = EB_LANG_EN;
	if ((s = langs[lang].msg[id]) == NULL)
		s = en[id];
	return s != NULL ? s : "";
}

static int
is_alpha(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static int
is_alnum(int ch)
{
	return is_alpha(ch) || (ch >= '0' && ch <= '9');
}

/* A quality value "0", "0.5", "1.000" (RFC 9110 12.4.2) as 0..1000, or
 * -1. */
static int
qvalue(const char *s, size_t n)
{
	int q, scale = 100;
	size_t i;

	if (n == 0 || (s[0] != '0' && s[0] != '1'))
		return -1;
	q = (s[0] - '0') * 1000;
	if (n == 1)
		return q;
	if (s[1] != '.' || n > 5)
		return -1;
	for (i = 2; i < n; i++, scale /= 10) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		q += (s[i] - '0') * scale;
	}
	return q <= 1000 ? q : -1;
}

/* The language of a range ("de-AT", "JA", "*"): its index, EB_LANG_COUNT
 * when we do not have it, -1 when it is malformed. */
static int
range_lang(const char *s, size_t n)
{
	size_t i, pri = 0;
	int l;

	if (n == 1 && s[0] == '*')
		return EB_LANG_EN;
	while (pri < n && pri < 9 && is_alpha((unsigned char)s[pri]))
		pri++;
	if (pri == 0 || pri > 8 || (pri < n && s[pri] != '-'))
		return -1;
	for (i = pri; i < n; i++)
		if (!is_alnum((unsigned char)s[i]) && s[i] != '-')
			return -1;
	for (l = 0; l < EB_LANG_COUNT; l++)
		if (strlen(langs[l].tag) == pri &&
		    strncasecmp(langs[l].tag, s, pri) == 0)
			return l;
	return EB_LANG_COUNT;
}

static size_t
trim(const char **s, size_t n)
{
	while (n > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		n--;
	}
	while (n > 0 && ((*s)[n - 1] == ' ' || (*s)[n - 1] == '\t'))
		n--;
	return n;
}

/* One item "range[;q=v]": *lang and *q, or -1 when it does not parse. */
static int
item(const char *s, size_t n, int *lang, int *q)
{
	const char *semi = memchr(s, ';', n), *end = s + n, *p;
	size_t rn = semi ? (size_t)(semi - s) : n, pn;

	*q = 1000;
	if ((*lang = range_lang(s, trim(&s, rn))) == -1)
		return -1;
	if (semi == NULL)
		return 0;
	p = semi + 1;
	pn = trim(&p, (size_t)(end - p));
	if (pn < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=')
		return -1;
	p += 2;
	pn = trim(&p, pn - 2);
	return (*q = qvalue(p, pn)) == -1 ? -1 : 0;
}

enum eb_lang
eb_i18n_negotiate(const char *h)
{
	int best = EB_LANG_EN, bestq = 0, lang, q, items = 0;
	size_t len, n;
	const char *p, *comma;

	if (h == NULL)
		return EB_LANG_EN;
	len = strnlen(h, EB_I18N_MAX_HEADER);
	for (p = h; p < h + len && items < EB_I18N_MAX_ITEMS; items++) {
		comma = memchr(p, ',', (size_t)(h + len - p));
		n = comma ? (size_t)(comma - p) : (size_t)(h + len - p);
		if (item(p, n, &lang, &q) == 0 && lang < EB_LANG_COUNT &&
		    q > bestq) {
			best = lang;
			bestq = q;
		}
		p += n + (comma != NULL);
	}
	return (enum eb_lang)best;
}
