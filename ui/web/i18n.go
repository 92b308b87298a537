package web

import (
	"net/http"
	"strings"
	"time"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/service"
)

// Languages: Japanese first, English alongside. Terms follow the project's glossary (statutory
// words exactly as the laws use them).
const (
	Japanese = "ja"
	English  = "en"
)

// language picks the page's language: the lang cookie the switch sets, else Accept-Language,
// else Japanese.
func language(r *http.Request) string {
	if c, err := r.Cookie("lang"); err == nil && (c.Value == Japanese || c.Value == English) {
		return c.Value
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]))
		switch {
		case strings.HasPrefix(tag, "ja"):
			return Japanese
		case strings.HasPrefix(tag, "en"):
			return English
		}
	}
	return Japanese
}

// messages holds every string the pages show, in both languages.
var messages = map[string][2]string{ // key: {ja, en}
	"read:stix_export":                {"STIX 2.1 での書き出し", "export as STIX 2.1"},
	"read:log_stream":                 {"監査ログの連続読出し", "the log streamed"},
	"read:statement":                  {"署名する文書", "the statement to sign"},
	"approved plan":                   {"承認された計画", "The approved plan"},
	"decision kind":                   {"判断の種類", "Decision"},
	"execution":                       {"実施", "Execution"},
	"first %d steps of %d":            {"全 %[2]d 件のうち最初の %[1]d 件の操作", "the first %d steps of %d"},
	"hint:report log":                 {"各行のログ番号は、監査ログの署名付きチェックポイント(末尾)に対する包含証明で確かめられます(GET /proof/{番号}、takedown audit verify -proof)。", "Each row's log index can be checked with an inclusion proof against the log's signed checkpoint below (GET /proof/{index}, takedown audit verify -proof)."},
	"imported targets":                {"脅威情報ファイルから取り込んだ対象", "Imported from threat-intelligence files"},
	"measure report":                  {"措置の記録", "Measure report"},
	"record of every step":            {"全記録", "The record of every step"},
	"report generated":                {"作成日時", "Generated"},
	"reports":                         {"報告", "Reports"},
	"step result":                     {"結果", "Result"},
	"steps":                           {"操作数", "Steps"},
	"share with partners":             {"関係機関との共有", "Share with partners"},
	"export as STIX":                  {"STIX 2.1 で書き出す", "Export as STIX 2.1"},
	"hint:stix export":                {"承認された対象を指標及び基盤として、措置の内容、報告書及び事案の攻撃主体の情報とともに、選んだ TLP の区分を付けた STIX 2.1 のバンドルに書き出します。書き出しは監査ログに記録されます。", "Writes the approved targets as indicators of infrastructure, with the course of action, the report and the case's attribution, as a STIX 2.1 bundle under the TLP chosen. The export is recorded in the audit log."},
	"my notifications":                {"通知の設定", "My notifications"},
	"measure":                         {"措置承認申請", "Measure"},
	"save":                            {"保存", "Save"},
	"notifications intro":             {"対応を待っている事項、期限の接近、期限の経過及び次の責任者としての通知を、メール又はウェブフック(Standard Webhooks の署名付き)で受け取れます。通知には事案の内容は含まれず、措置承認申請へのリンクだけが含まれます。", "You can be told by e-mail or webhook (signed per Standard Webhooks) when something waits on you, when its deadline nears or passes, and when you are next responsible for one that passed. A notification holds no case content: only a link to the measure."},
	"webhook secret once":             {"このウェブフックの署名鍵です。この画面でだけ表示されます。受信側で署名の検証に使ってください。", "This webhook's signing secret, shown only now: the receiver checks each event's signature with it."},
	"email address":                   {"メールアドレス", "E-mail address"},
	"webhook url":                     {"ウェブフックのURL", "Webhook URL"},
	"tell me":                         {"受け取る通知", "Tell me"},
	"notice:waiting":                  {"対応を待っている事項", "what waits on me"},
	"notice:reminder":                 {"期限の接近", "a deadline nearing"},
	"notice:overdue":                  {"期限の経過", "a deadline passed"},
	"notice:escalation":               {"次の責任者としての通知", "a deadline passed that I am next responsible for"},
	"notifications to me":             {"私への通知", "Notifications to me"},
	"none yet":                        {"まだありません", "None yet"},
	"channel":                         {"手段", "Channel"},
	"channel:email":                   {"メール", "e-mail"},
	"channel:webhook":                 {"ウェブフック", "webhook"},
	"sent at":                         {"送信済み", "sent"},
	"not sent yet":                    {"未送信", "not sent yet"},
	"import targets":                  {"脅威情報ファイルからの対象の取込み", "Import targets from threat intelligence"},
	"hint:import":                     {"STIX 2.1 のバンドル又は MISP のイベント(JSON、128 MiB まで)。取り込む前に、追加される対象、攻撃主体の情報及び取り込まれないものとその理由を確認する画面が表示されます。", "A STIX 2.1 bundle or a MISP event (JSON, up to 128 MiB). Before anything is added, a preview shows the targets it would add, the attribution it states, and what is left out and why."},
	"format":                          {"形式", "Format"},
	"detect":                          {"自動判別", "detect"},
	"preview import":                  {"取込み内容を確認", "Preview the import"},
	"import preview":                  {"取込み内容の確認", "Import preview"},
	"back to the draft":               {"申請案に戻る", "Back to the draft"},
	"imported file":                   {"取り込むファイル", "The file"},
	"identifier":                      {"識別子", "Identifier"},
	"producer":                        {"作成者", "Producer"},
	"objects read":                    {"読み込んだ項目数", "Objects read"},
	"what importing adds":             {"取込みで追加されるもの", "What importing adds"},
	"targets to add":                  {"追加される対象", "Targets to add"},
	"with a note":                     {"注記のある対象", "With a note"},
	"already in the draft":            {"申請案に既にある対象", "Already in the draft"},
	"skipped":                         {"取り込まれないもの", "Skipped"},
	"attribution entries":             {"攻撃主体等の情報", "Attribution entries"},
	"imported at":                     {"取込み済み:", "Imported at"},
	"hint:confirm import":             {"この画面に表示された対象を取り込みます。申請案又は事案がその後変わった場合は取り込まれず、改めて確認を求められます。対象一覧のハッシュ:", "This imports the targets this page lists. If the draft or the case has changed since, nothing is imported and you are asked to look again. Hash of the list:"},
	"import %d targets":               {"%d 件の対象を取り込む", "Import %d targets"},
	"import the attribution":          {"帰属情報を取り込む", "Import the attribution"},
	"no target names a country":       {"国名を示す対象はありません", "No target names a country"},
	"nothing to import":               {"申請案にない対象も事案にない帰属情報もこのファイルにありません。取り込むものはありません。", "The file names no target the draft does not hold already and no attribution the case does not: nothing to import."},
	"source":                          {"出典", "Source"},
	"notes":                           {"注記", "Notes"},
	"hint:import attribution":         {"取り込むと、事案の攻撃主体の特定に加えられます。", "Importing adds these to the case's attribution."},
	"object type":                     {"種別", "Type"},
	"count":                           {"件数", "Count"},
	"for example":                     {"例", "For example"},
	"imported":                        {"取り込みました", "Imported"},
	"intel:threat-actor":              {"攻撃者", "Threat actor"},
	"intel:intrusion-set":             {"攻撃グループ", "Intrusion set"},
	"intel:campaign":                  {"攻撃活動", "Campaign"},
	"intel:malware":                   {"マルウェア", "Malware"},
	"intel:tool":                      {"ツール", "Tool"},
	"product":                         {"アクセス・無害化措置 承認管理", "Access-and-neutralization measures"},
	"login":                           {"ログイン", "Log in"},
	"logout":                          {"ログアウト", "Log out"},
	"username":                        {"ユーザー名", "Username"},
	"password":                        {"パスワード", "Password"},
	"sso":                             {"シングルサインオンでログイン", "Log in with single sign-on"},
	"my work":                         {"自分の作業", "My work"},
	"measures":                        {"措置承認申請", "Measure requests"},
	"new case":                        {"事案の登録", "New case"},
	"summary":                         {"概要", "Summary"},
	"new measure":                     {"措置承認申請の起案", "New measure request"},
	"legal basis":                     {"法的根拠", "Legal basis"},
	"measure kind":                    {"措置の種別", "Kind of measure"},
	"self_execute":                    {"自ら実施", "carried out by the agency"},
	"order_administrator":             {"管理者への命令", "order to the administrator"},
	"one per line":                    {"1行に1つ", "one per line"},
	"executors":                       {"サイバー危害防止措置執行官", "Executors"},
	"notification plan":               {"関係者への通知計画", "Notification plan"},
	"save draft":                      {"起案を保存", "Save the draft"},
	"add evidence":                    {"証拠資料の追加", "Add evidence"},
	"file":                            {"ファイル", "File"},
	"evidence kind":                   {"資料の種類", "Kind of evidence"},
	"provenance":                      {"取得経緯", "Provenance"},
	"targets refused":                 {"対象は登録されませんでした", "The targets were not added"},
	"nothing waits":                   {"対応待ちの案件はありません。", "Nothing waits on you."},
	"waits":                           {"対応待ち", "Waiting on you"},
	"by stage":                        {"段階別件数", "By stage"},
	"stage":                           {"段階", "Stage"},
	"case":                            {"事案", "Case"},
	"title":                           {"件名", "Title"},
	"updated":                         {"更新", "Updated"},
	"version":                         {"版", "Version"},
	"digest":                          {"ダイジェスト", "Digest"},
	"requester":                       {"申請者", "Requester"},
	"targets":                         {"対象", "Targets"},
	"evidence":                        {"証拠資料", "Evidence"},
	"technique":                       {"措置の手法", "Technique"},
	"operations":                      {"実施内容", "Operations"},
	"alternatives":                    {"検討した代替手段", "Alternatives considered"},
	"necessity":                       {"必要性", "Necessity"},
	"proportionality":                 {"相当性", "Proportionality"},
	"collateral":                      {"付随的影響", "Collateral impact"},
	"rollback":                        {"原状回復計画", "Rollback plan"},
	"history":                         {"経過 (監査ログ)", "Timeline (audit log)"},
	"actions":                         {"操作", "Actions"},
	"no actions":                      {"この段階であなたが行える操作はありません。", "There is nothing you may do at this stage."},
	"decision":                        {"判断", "Decision"},
	"reason":                          {"理由", "Reason"},
	"conditions":                      {"附款 / 条件 (1行に1つ)", "Conditions (one per line)"},
	"conflicted":                      {"利益相反があり回避する", "I have a conflict of interest and recuse myself"},
	"body":                            {"本文", "Text"},
	"send":                            {"送信", "Send"},
	"decides on":                      {"この判断は次の版に対するものです:", "This decision is on version"},
	"conflict":                        {"利益相反", "Conflict of interest"},
	"plan":                            {"措置の計画", "The plan"},
	"drawn from the sealed version":   {"以下は封印された版(ダイジェストの対象)の内容です。", "What follows is the sealed version, which the digest covers."},
	"self execution fallback":         {"命令不履行時の自らの実施", "Self-execution if the order is not complied with"},
	"requested window":                {"申請する有効期間", "Requested window"},
	"urgent":                          {"緊急の審議を求める", "Urgent decision requested"},
	"data handling":                   {"取得情報の取扱い", "Data handling"},
	"emergency justification":         {"緊急性の理由", "Emergency justification"},
	"extra":                           {"その他の記載事項", "Further particulars"},
	"targets digest":                  {"対象一覧のハッシュ:", "Hash of the target list:"},
	"attribution":                     {"攻撃主体の特定", "Attribution"},
	"harm":                            {"被害・おそれ", "Harm"},
	"port":                            {"ポート", "Port"},
	"ownership":                       {"管理者の別", "Ownership"},
	"hosting provider":                {"ホスティング事業者", "Hosting provider"},
	"registrar":                       {"レジストラ", "Registrar"},
	"yes":                             {"はい", "yes"},
	"cases":                           {"事案一覧", "Cases"},
	"changes since returned":          {"差戻し時の版からの変更", "Changes since the version returned"},
	"this version":                    {"この版", "this version"},
	"seal broken":                     {"この版の保存内容がダイジェストと一致しません。データベースが改変された可能性があります。この版についての判断はできません。監査担当者に連絡してください。", "This version's stored content does not match its digest: the database may have been altered. No decision can be taken on this version; tell an auditor."},
	"detail":                          {"詳細(英語)", "Detail"},
	"refusal:invalid":                 {"入力に誤りがあります。項目を確かめて、もう一度送ってください。", "The input is not valid: check the field and send it again."},
	"refusal:forbidden":               {"この操作はあなたには認められていません。", "You may not do this."},
	"refusal:wrong_stage":             {"措置の現在の段階では、この操作はできません。", "This is not possible in the measure's present stage."},
	"refusal:conflict":                {"他の操作と重なりました。読み込み直してから、もう一度行ってください。", "Another action changed this at the same time: read it again, then retry."},
	"refusal:stale_version":           {"表示していた版から措置が変わりました。", "The measure has changed since the version you were shown."},
	"refusal:idempotency_key_reused":  {"同じ識別キーが別の操作に使われています。", "This request key was used for another request."},
	"refusal:too_large":               {"送信された内容が大きすぎます。", "What was sent is too large."},
	"refusal:too_many_attempts":       {"試行が多すぎます。しばらく待ってからやり直してください。", "Too many attempts: wait, then try again."},
	"refusal:unauthenticated":         {"ログインが必要です。", "Sign in first."},
	"refusal:internal":                {"サーバ内部のエラーです。記録を確認してください。", "Internal error: the server's log has the details."},
	"refusal:unavailable":             {"監査ログが署名できないため、現在は操作を受け付けられません。", "The audit log cannot sign now: actions are refused until it can."},
	"refusal:timeout":                 {"期限内に応答がありませんでした。状態を読み込み直してから、やり直してください。", "No answer in time: read the state again before retrying."},
	"refusal:not_found":               {"見つかりません。", "Not found."},
	"remove":                          {"削除", "Remove"},
	"remove selected targets":         {"選択した対象を削除", "Remove the targets ticked"},
	"p90":                             {"90パーセンタイル", "90th percentile"},
	"effect:allow":                    {"許可", "allow"},
	"effect:deny":                     {"拒否", "deny"},
	"effect:sign":                     {"本人署名を要する", "must be signed"},
	"my keys":                         {"署名鍵", "My keys"},
	"keys intro":                      {"決定には、あなた自身の署名鍵（パスキー、または SSH 鍵）で署名します。監査担当者は、サーバーを信頼せずに、その署名を後から検証できます。新しい鍵は、あなた以外の管理者が承認すると有効になります。", "You sign your decisions with a key of your own (a passkey, or an SSH key). Auditors check those signatures later without trusting the server. A new key is in force once an administrator other than you approves it."},
	"signing keys":                    {"登録済みの署名鍵", "Your signing keys"},
	"no keys":                         {"署名鍵はまだ登録されていません。", "You have no signing key yet."},
	"key":                             {"鍵", "Key"},
	"label":                           {"名前", "Label"},
	"state":                           {"状態", "State"},
	"key:webauthn":                    {"パスキー", "passkey"},
	"key:ssh":                         {"SSH 鍵", "SSH key"},
	"key state:pending":               {"管理者の承認待ち", "waiting for an administrator"},
	"key state:active":                {"有効", "in force"},
	"key state:revoke_pending":        {"失効の承認待ち", "revocation waiting for a second administrator"},
	"key state:revoked":               {"失効", "revoked"},
	"register a passkey":              {"パスキーを登録", "Register a passkey"},
	"you sign":                        {"あなたが署名する内容:", "You sign:"},
	"ssh keys by cli":                 {"SSH 鍵はコマンドラインから登録します:", "SSH keys are registered from the command line:"},
	"revoke key":                      {"失効させる", "Revoke"},
	"keys waiting":                    {"承認待ちの署名鍵", "Signing keys waiting"},
	"revoke a lost key":               {"紛失した鍵の失効（2名の管理者）", "Revoke a lost key (two administrators)"},
	"signature required":              {"この決定には本人署名が必要です。パスキーを登録するか、登録済みの SSH 鍵で CLI の -sign を使ってください:", "This decision must be signed personally. Register a passkey, or use the CLI's -sign with your registered SSH key:"},
	"signed with passkey":             {"送信前に決定内容を表示し、あなたのパスキーで署名します。", "Before sending, the decision is shown and signed with your passkey."},
	"signature required, key pending": {"この決定には本人署名が必要です。あなたのパスキーは管理者の承認待ちです。承認後に署名できます:", "This decision must be signed personally. Your passkey waits for an administrator's approval; you can sign once it is approved:"},
	"passkey:security":                {"この画面のアドレスではパスキーを使えません。ドメイン名で開いてください(dev では localhost とポート番号)。", "Passkeys cannot be used at this address: open the pages under a domain name (in dev, localhost and the port)."},
	"passkey:notallowed":              {"パスキーが使われませんでした(取り消し、時間切れ、またはこの端末に登録済みの鍵がありません)。もう一度試すか、この端末の鍵を「署名鍵」で登録してください。", "The passkey was not used (cancelled, timed out, or no key registered on this device): try again, or register this device's key under My keys."},
	"passkey:unsupported":             {"このブラウザではパスキーを使えません。", "This browser cannot use passkeys."},
	"sign and send":                   {"パスキーで署名して送信", "Sign with passkey and send"},
	"personally signed":               {"本人署名", "personally signed"},
	"signed note":                     {"決定者本人の鍵による署名。takedown audit verify が、ログに登録された鍵で検証します。", "signed with the decider's own key; takedown audit verify checks it against the key the log registered."},
	"key proposed":                    {"署名鍵を申請しました。あなた以外の管理者が承認すると有効になります。", "Key proposed: it is in force once an administrator other than you approves it."},
	"org:agency":                      {"申請機関(警察・自衛隊)", "agency (police, SDF)"},
	"org:commission":                  {"サイバー通信情報監理委員会", "the Commission"},
	"scope:npa":                       {"警察庁", "National Police Agency"},
	"scope:prefectural":               {"都道府県警察", "prefectural police"},
	"foreign targets":                 {"国外または所在不明の対象", "Targets abroad or of unknown location"},
	"information requests":            {"資料提出の要求と回答", "Information requested and answered"},
	"order":                           {"措置命令", "Order to the administrator"},
	"order outcome":                   {"命令の結果", "Outcome"},
	"execution steps":                 {"実施記録", "Execution steps"},
	"search steps":                    {"実施記録を対象で検索", "Search steps by target"},
	"target":                          {"対象", "Target"},
	"step action":                     {"実施した操作", "What was done"},
	"result":                          {"結果", "Result"},
	"executor":                        {"サイバー危害防止措置執行官", "Executor"},
	"step witness":                    {"立会人", "Witness"},
	"result:success":                  {"成功", "success"},
	"result:failure":                  {"失敗", "failure"},
	"result:partial":                  {"一部成功", "partial"},
	"report:post_execution":           {"実施報告", "Execution report"},
	"report:commission_notification":  {"委員会への事後通知", "Notification of the Commission"},
	"verified by":                     {"確認者:", "Verified by"},
	"notifications":                   {"関係者への通知", "Notification of affected parties"},
	"addressee":                       {"通知先", "Addressee"},
	"status":                          {"状況", "Status"},
	"notice:sent":                     {"通知済み", "sent"},
	"notice:deferred":                 {"延期(理由付き)", "deferred, with reasons"},
	"window hint":                     {"例: 14d(日)、72h(時間)", "e.g. 14d for days, 72h for hours"},
	"first sign-in":                   {"初回登録(登録コードをお持ちの方)", "First sign-in (with an enrolment code)"},
	"enrol hint":                      {"システム管理者から受け取った登録コードと、新しいパスワード(12〜72バイト)を入力してください。", "Enter the enrolment code an administrator gave you and a new password (12 to 72 bytes)."},
	"enrolment code":                  {"登録コード", "Enrolment code"},
	"new password":                    {"新しいパスワード", "New password"},
	"enrol":                           {"登録する", "Enrol"},
	"enrolled":                        {"登録しました。新しいパスワードでログインしてください。", "Enrolled: sign in with your new password."},
	"opened":                          {"作成日時", "Opened"},
	"read":                            {"閲覧", "read"},
	"no":                              {"いいえ", "no"},
	", ":                              {"、", ", "},
	"the version returned":            {"差し戻された版", "the version returned"},
	"compare with":                    {"他の版と比較:", "Compare with"},
	"evidence added":                  {"追加された証拠", "Evidence added"},
	"evidence removed":                {"削除された証拠", "Evidence removed"},
	"no conflict":                     {"利益相反はない", "I have no conflict of interest"},
	"choose":                          {"選択してください", "Choose"},
	"gate:foreign_ministry":           {"外務大臣との協議", "Consultation with the Foreign Minister"},
	"gate:pm_order":                   {"内閣総理大臣の命令", "Order of the Prime Minister"},
	"order addressee":                 {"命令の名あて人(管理者)", "Addressee (the server's administrator)"},
	"order content":                   {"命令の内容", "What the order requires"},
	"order deadline":                  {"履行期限(日本時間)", "Deadline (JST)"},
	"order proof":                     {"送達の記録(任意)", "Proof of delivery (optional)"},
	"stale":                           {"この判断は記録されていません。表示していた版から措置が変わりました。変更点を確認し、改めて判断してください。", "Nothing was recorded: the measure has changed since the version you were shown. Read what changed, then decide again."},
	"refused":                         {"受け付けられませんでした", "Refused"},
	"rule":                            {"規則", "Rule"},
	"field":                           {"項目", "Field"},
	"done":                            {"記録しました。", "Recorded."},
	"language":                        {"English", "日本語"},
	"not found":                       {"見つかりません。存在しないか、閲覧権限がありません。", "Not found: it does not exist, or it is not yours to see."},
	"login failed":                    {"ユーザー名またはパスワードが違います。", "Wrong username or password."},
	"all measures":                    {"閲覧できる措置承認申請", "Measure requests you may read"},
	"next page":                       {"次へ", "Next"},
	"prev page":                       {"前へ", "Previous"},
	"signed in as":                    {"ログイン中:", "Signed in as"},
	"approve":                         {"承認", "approve"},
	"return":                          {"差戻し", "return for changes"},
	"reject":                          {"不承認", "reject"},
	"accepted":                        {"相当と認める", "accepted"},
	"impropriety":                     {"不適切と認定", "impropriety found"},
	"complied":                        {"履行", "complied"},
	"not_complied":                    {"不履行", "not complied"},
	"no_conflict":                     {"利益相反なし", "no conflict"},
	"foreign_ministry":                {"外務大臣との協議", "Foreign Minister consultation"},
	"pm_order":                        {"内閣総理大臣の命令", "Prime Minister's order"},
	"window":                          {"承認の有効期間", "Approval window"},
	"edit plan":                       {"計画を編集する", "Edit the plan"},
	"save plan":                       {"計画を保存", "Save the plan"},
	"add targets":                     {"対象の追加", "Add targets"},
	"search targets":                  {"対象の検索 (値の一部)", "Search the targets (part of the value)"},
	"search":                          {"検索", "Search"},
	"matching":                        {"件が該当", "match"},
	"kind":                            {"種別", "Kind"},
	"value":                           {"値", "Value"},
	"location":                        {"所在", "Location"},
	"country":                         {"国", "Country"},
	"role":                            {"役割", "Role"},
	"downloads audited":               {"証拠資料のダウンロードはすべて保管記録と監査ログに記録されます。", "Every download of evidence is recorded in its custody and in the audit log."},
	"decisions":                       {"審査・採決の記録", "Reviews and votes"},
	"by":                              {"操作者", "By"},
	"actor":                           {"操作者", "Actor"},
	"the system":                      {"システム(ワークフロー)", "the system (the workflow)"},
	"read:measure":                    {"措置", "the measure"},
	"read:dossier":                    {"措置のページ", "the measure's page"},
	"read:changes":                    {"変更点", "the changes"},
	"read:decisions":                  {"判断の一覧", "the decisions"},
	"read:history":                    {"履歴", "the history"},
	"read:targets":                    {"対象一覧", "the targets"},
	"read:evidence":                   {"証拠資料の一覧", "the evidence"},
	"read:measures":                   {"措置の一覧", "the measure list"},
	"read:case":                       {"事案", "the case"},
	"read:cases":                      {"事案一覧", "the case list"},
	"read:log_entry":                  {"監査ログの項目", "a log entry"},
	"read:log_entries":                {"監査ログ", "the log's entries"},
	"when":                            {"日時", "When"},
	"void":                            {"無効 (旧版)", "void (earlier version)"},
	"condition":                       {"条件", "Condition"},
	"decision:legal":                  {"法務審査", "Legal review"},
	"decision:command":                {"指揮官審査", "Command review"},
	"decision:post_hoc":               {"事後審査", "Post-hoc review"},
	"decision:report_verification":    {"報告の確認", "Report verification"},
	"decision:vote":                   {"採決", "Vote"},
	"decision:conflict":               {"利益相反の申告", "Conflict declaration"},
	"decision:gate":                   {"協議・命令", "Consultation or order"},
	"log entry":                       {"ログ項目", "log entry"},
	"pending":                         {"署名待ち", "awaiting signature"},
	"changes since":                   {"以前の版からの変更", "Changes from an earlier version"},
	"no changes":                      {"変更はありません。", "Nothing changed."},
	"targets added":                   {"追加された対象", "Targets added"},
	"targets removed":                 {"削除された対象", "Targets removed"},
	"pages":                           {"ページ", "Pages"},
	"recused":                         {"利益相反あり (回避)", "recused (conflict of interest)"},
	"back to measure":                 {"措置承認申請に戻る", "Back to the measure"},
	"audit log":                       {"監査ログ", "Audit log"},
	"signed checkpoint":               {"署名付きチェックポイント (最新)", "Newest signed checkpoint"},
	"signatures":                      {"署名", "Signatures"},
	"signer":                          {"署名者", "Signer"},
	"log":                             {"ログ自身の署名", "the log's own signature"},
	"witness":                         {"証人 (witness) の連署", "a witness's cosignature"},
	"keys from":                       {"検証鍵の出所", "Verifier keys from"},
	"keys:configuration":              {"サーバーの設定 (署名鍵)", "the server's configuration (its signing key)"},
	"keys:database":                   {"データベースに記録された鍵履歴 (参考。監査担当者は自身のポリシーで検証してください)", "the key history recorded in the database (a convenience: auditors verify with their own policy)"},
	"check an entry":                  {"ログ項目の包含証明を確認", "Check an entry's inclusion"},
	"log index":                       {"ログ番号", "Log index"},
	"check inclusion":                 {"確認する", "Check"},
	"export for offline verification": {"オフライン検証用の書出し", "Export for offline verification"},
	"export explained":                {"ログ全体 (チェックポイント、タイル、記録) を書き出します。書出しは監査ログに記録されます。", "Writes the whole log (checkpoint, tiles, records). The export is recorded in the audit log."},
	"download archive":                {"アーカイブをダウンロード", "Download the archive"},
	"policy file":                     {"ポリシーファイル", "Policy file"},
	"then run":                        {"次のコマンドで検証します", "Then verify with"},
	"inclusion proof":                 {"包含証明", "Inclusion proof"},
	"inclusion verified":              {"この記録は署名付きの木に含まれていることを検証しました", "Verified: this record is in the signed tree"},
	"inclusion not verified":          {"包含を検証できませんでした", "Inclusion could not be verified"},
	"size":                            {"木の大きさ", "tree size"},
	"action":                          {"操作", "Action"},
	"record hash":                     {"記録のハッシュ", "Record hash"},
	"tree root":                       {"木の根", "Tree root"},
	"proof":                           {"証明 (c2sp.org/tlog-proof)", "Proof (c2sp.org/tlog-proof)"},
	"verify offline":                  {"オフラインでの検証", "To verify offline"},
	"statutory requirements":          {"法定要件の確認 (承認にはすべての確認が必要)", "Statutory requirements (an approval confirms every one)"},
	"req:harmful_telecommunication":   {"加害関係電気通信が認められる", "a harmful telecommunication is identified and evidenced"},
	"req:serious_harm":                {"生命・身体・財産に対する重大な危害が生ずるおそれがある", "serious harm to life, body or property is threatened"},
	"req:urgency":                     {"緊急の必要がある", "the matter is urgent"},
	"req:normally_necessary":          {"通常必要と認められる措置である", "the measure is one normally necessary"},
	"req:via_telecommunication_lines": {"電気通信回線を介して行う措置である", "the measure is taken via telecommunication lines"},
	"req:minimum_necessary":           {"必要最小限度にとどまる", "it stays within the minimum necessary extent"},
	"agency":                          {"申請機関", "Agency"},
	"target starts with":              {"対象 (前方一致)", "Target (starts with)"},
	"emergency":                       {"緊急時の措置", "Emergency path"},
	"emergency only":                  {"緊急時のもののみ", "emergency only"},
	"no emergency":                    {"緊急時以外", "not emergency"},
	"opened from":                     {"起案日 (から)", "Opened from"},
	"opened to":                       {"起案日 (まで)", "Opened to"},
	"no results":                      {"該当する措置承認申請はありません。", "No measure matches."},
	"statistics":                      {"国会報告用統計", "Statistics for the Diet"},
	"year":                            {"年 (日本時間。年度は4月に始まる年)", "Year (JST; a fiscal year is named by the year it starts in)"},
	"show":                            {"表示", "Show"},
	"download csv":                    {"CSV をダウンロード", "Download CSV"},
	"stats scope":                     {"閲覧できる措置承認申請について集計しています。", "Counted over the measure requests you may read."},
	"by quarter":                      {"四半期別", "By quarter"},
	"total":                           {"年計", "Year"},
	"time in stage":                   {"各段階の所要時間 (その年に段階を終えたもの)", "Time in each stage (stages left during the year)"},
	"median":                          {"中央値", "Median"},
	"chart title":                     {"四半期別の承認申請・承認・不承認・差戻し", "Requests, approvals, rejections and returns by quarter"},
	"stat:requests":                   {"承認申請", "Requests"},
	"stat:approvals":                  {"承認", "Approvals"},
	"stat:rejections":                 {"不承認", "Rejections"},
	"stat:returns":                    {"差戻し", "Returns"},
	"stat:emergencies":                {"緊急時の措置", "Emergencies"},
	"stat:post_hoc_accepted":          {"事後審査: 相当", "Post-hoc: accepted"},
	"stat:post_hoc_impropriety":       {"事後審査: 不適切", "Post-hoc: impropriety"},
	"stat:targets_abroad":             {"国外の対象", "Targets abroad"},
	"waiting since":                   {"この段階に入った日時", "Waiting since"},
	"deadline":                        {"期限", "Deadline"},
	"overdue":                         {"期限超過", "overdue"},
	"administration":                  {"管理", "Administration"},
	"users":                           {"利用者", "Users"},
	"name":                            {"氏名", "Name"},
	"roles":                           {"役割", "Roles"},
	"sign-in":                         {"ログイン方式", "Sign-in"},
	"not enrolled":                    {"未登録", "not enrolled"},
	"retired":                         {"退任", "Retired"},
	"pending changes":                 {"承認待ちの変更 (二人の管理者による)", "Changes waiting for a second administrator"},
	"none pending":                    {"承認待ちの変更はありません。", "Nothing waits."},
	"proposed by":                     {"提案者", "Proposed by"},
	"approve change":                  {"この変更を承認する", "Approve this change"},
	"another admin approves":          {"自分の提案は別の管理者が承認します。", "Another administrator approves your proposal."},
	"propose change":                  {"変更の提案", "Propose a change"},
	"user id":                         {"利用者 ID", "User ID"},
	"new account":                     {"新しい機関・利用者", "New organisation or user"},
	"org name":                        {"機関名", "Organisation name"},
	"org kind":                        {"機関の種別", "Kind of organisation"},
	"designation":                     {"執行官の指名", "Executor designation"},
	"scope":                           {"範囲", "Scope"},
	"valid from":                      {"有効期間の始期", "Valid from"},
	"valid until":                     {"有効期間の終期", "Valid until"},
	"policy":                          {"権限ポリシー", "Authorization policy"},
	"policy signs nothing": {"現在のポリシーは、どの決定にも本人署名を求めていません。管理者全員が署名鍵を登録し、互いに承認したら、すべての決定・実施記録・承認に本人署名を求める署名ポリシーを提案してください（別の管理者が承認すると有効になります）。",
		"The policy in force requires no decision to be signed personally. Once every administrator has registered a signing key and the others have approved it, propose the signing policy, which requires a personal signature on every decision, batch of steps and approval (in force when another administrator approves it)."},
	"propose signing policy":  {"署名ポリシーを提案", "Propose the signing policy"},
	"year basis":              {"集計の単位", "Counted by"},
	"calendar year":           {"暦年（1〜12月）", "calendar year (January to December)"},
	"fiscal year":             {"年度（4〜翌3月）", "fiscal year (April to March)"},
	"changes against":         {"現行ポリシーとの差分:", "Changes against the policy in force,"},
	"rule added":              {"追加", "added"},
	"rule dropped":            {"削除", "dropped"},
	"same rules":              {"規則は現行と同じです", "The same rules as in force"},
	"signing policy reason":   {"すべての決定・実施記録・承認に本人署名を求める", "every decision, batch of steps and approval signed personally"},
	"rules":                   {"規則", "rules"},
	"effect":                  {"効果", "Effect"},
	"approve policy":          {"この版を承認する", "Approve this version"},
	"propose policy":          {"新しい版の提案", "Propose a new version"},
	"proposed":                {"提案しました。別の管理者の承認を待ちます。", "Proposed; it waits for another administrator."},
	"enrolment code for":      {"登録コード", "Enrolment code for"},
	"enrolment code note":     {"このコードは一度だけ表示されます。本人に別経路で伝えてください。", "Shown once: pass it to the person by another channel."},
	"kind:create_org":         {"機関の作成", "create an organisation"},
	"kind:create_user":        {"利用者の作成", "create a user"},
	"kind:retire_user":        {"利用者の退任", "retire a user"},
	"kind:grant_role":         {"役割の付与", "grant a role"},
	"kind:revoke_role":        {"役割の取消し", "revoke a role"},
	"kind:designate":          {"執行官の指名", "designate an executor"},
	"kind:revoke_designation": {"指名の取消し", "revoke a designation"},
	"upload progress":         {"アップロードの進捗", "Upload progress"},
	"gate":                    {"協議・命令の種別", "Consultation or order"},
	"reference":               {"文書番号 (協議記録・命令書)", "Reference (consultation record or order document)"},
	"steps csv":               {"実施記録 (CSV、1行に1件: 対象,手法,操作,結果,立会人ID,日時 RFC 3339)", "Steps (CSV, one per line: target,technique,action,result,witness ID,time in RFC 3339)"},
	"notices csv":             {"通知 (CSV、1行に1件: 宛先,状況(sent=通知済み/deferred=延期),延期の理由)", "Notifications (CSV, one per line: addressee,status (sent or deferred),reason for a deferral)"},
	"hint:targets":            {"1行に1件: 値,所在(domestic=国内/abroad=国外/unknown=不明),ポート,国,役割,管理者の別,ホスティング事業者,レジストラ(値の後は省略可)", "one per line: value,location (domestic, abroad or unknown),port,country,role,ownership,hosting provider,registrar (all but the value may be left out)"},
	"hint:executors":          {"ユーザーID、1行に1人", "user IDs, one per line"},
	"hint:alternatives":       {"1行に1件: 手段,結果(tried=実施済み/impossible=実施不能/rejected=不採用),理由", "one per line: means,outcome (tried, impossible or rejected),reason"},
	"steps file":              {"または実施記録の CSV ファイル", "or a CSV file of steps"},
}

// fieldNames are a plan's fields in words, for the version diff.
var fieldNames = map[string]string{
	"title": "title", "legal_basis": "legal basis", "kind": "measure kind", "technique": "technique", "operations": "operations",
	"executors": "executors", "alternatives": "alternatives", "necessity": "necessity", "proportionality": "proportionality",
	"collateral": "collateral", "rollback_plan": "rollback", "notification_plan": "notification plan",
}

// fieldName is a plan field in words (its JSON name when it has none).
func fieldName(lang, field string) string {
	if k, ok := fieldNames[field]; ok {
		return T(lang, k)
	}
	return field
}

// orDash shows an empty value as a dash.
func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// T is the message key in lang; a missing key shows itself, so a test finds it.
func T(lang, key string) string {
	m, ok := messages[key]
	if !ok {
		return key
	}
	if lang == English {
		return m[1]
	}
	return m[0]
}

var stageNames = map[measure.Stage][2]string{
	"DRAFT": {"起案中", "draft"}, "LEGAL_REVIEW": {"法務審査中", "legal review"}, "COMMAND_REVIEW": {"指揮官審査中", "command review"},
	"GATES": {"協議中", "consultations"}, "COMMISSION_REVIEW": {"委員会審議中", "before the Commission"},
	"INFO_REQUESTED": {"資料要求中", "information requested"}, "APPROVED": {"承認済み", "approved"}, "REJECTED": {"不承認", "rejected"},
	"ORDER_ISSUED": {"管理者への命令発出済み", "order issued to the administrator"}, "EXECUTING": {"実施中", "executing"},
	"EMERGENCY_EXECUTING": {"緊急実施中", "executing (emergency)"}, "EXECUTED": {"実施済み", "executed"},
	"COMMISSION_NOTIFIED": {"委員会へ事後通知済み", "Commission notified"}, "POST_HOC_REVIEWED": {"事後審査済み", "post-hoc review done"},
	"REPORTED": {"実施報告済み", "reported"}, "NOTIFYING": {"関係者通知中", "notifying affected parties"}, "CLOSED": {"終結", "closed"},
	"EXPIRED": {"失効", "expired (window unused)"}, "WITHDRAWN": {"取下げ", "withdrawn"},
}

// stageName is a stage in words.
func stageName(lang string, s measure.Stage) string {
	n, ok := stageNames[s]
	if !ok {
		return string(s)
	}
	if lang == English {
		return n[1]
	}
	return n[0]
}

var opNames = map[authz.Op][2]string{
	authz.OpSubmit: {"提出", "Submit"}, authz.OpLegalReview: {"法務審査", "Legal review"}, authz.OpCommandReview: {"指揮官審査", "Command review"},
	authz.OpRecordGate: {"協議の記録", "Record a consultation"}, authz.OpDeclareConflict: {"利益相反の申告", "Declare a conflict of interest"},
	authz.OpVote: {"採決", "Vote"}, authz.OpRequestInfo: {"資料提出の要求", "Request information"}, authz.OpRespondInfo: {"資料の提出", "Answer the request"},
	authz.OpWithdraw: {"取下げ", "Withdraw"}, authz.OpIssueOrder: {"措置命令の発出", "Issue an order"}, authz.OpOrderOutcome: {"命令の結果", "Order outcome"},
	authz.OpStartExecution: {"実施開始", "Start execution"}, authz.OpLogSteps: {"実施記録", "Log execution steps"},
	authz.OpFinishExecution: {"実施終了", "Finish execution"}, authz.OpDeclareEmergency: {"緊急時の宣言", "Declare an emergency"},
	authz.OpNotifyCommission: {"委員会への事後通知", "Notify the Commission"}, authz.OpPostHocDecision: {"事後審査", "Post-hoc review"},
	authz.OpReport: {"実施報告", "Execution report"}, authz.OpVerifyReport: {"報告の確認", "Verify the report"},
	authz.OpNotify: {"関係者への通知", "Notify affected parties"}, authz.OpClose: {"終結", "Close"},
	authz.OpApproveKey: {"署名鍵の承認", "Approve a signing key"}, authz.OpApprovePolicy: {"ポリシーの承認", "Approve a policy version"},
	authz.OpApproveRoleChange: {"アカウント変更の承認", "Approve an account change"},
}

func opName(lang string, op authz.Op) string {
	n, ok := opNames[op]
	if !ok {
		return string(op)
	}
	if lang == English {
		return n[1]
	}
	return n[0]
}

// ruleText says what a refusal's rule means, for a person.
var ruleText = map[string][2]string{
	"SoD-1":        {"申請者・法務審査官・指揮官は同一人物であってはなりません。", "The requester, the legal reviewer and the commander must be different people."},
	"SoD-2":        {"機関の役割と委員会の役割を兼ねることはできません。", "Nobody holds both agency and Commission roles."},
	"SoD-3":        {"利益相反を申告した委員、または既に投票した委員は投票できません。", "A member who declared a conflict, or already voted on this version, may not vote."},
	"SoD-4":        {"執行官は承認された版で指名され、有効な指名を受けている必要があります。", "The executor must be named in the approved version and hold a valid designation."},
	"SoD-5":        {"実施記録の立会人は執行官以外の者でなければなりません。", "An execution step's witness must be someone other than the executor."},
	"SoD-6":        {"緊急時の宣言は指揮官のみ、事後審査は本件に関与していない委員が行います。", "Only a commander declares an emergency; post-hoc reviewers took no part in the measure."},
	"SoD-7":        {"実施報告の確認は作成者以外の者が行います。", "The report is verified by someone other than its author."},
	"SoD-8":        {"監査担当者は閲覧のみ、システム管理者は事案を扱えません。", "Auditors only read; administrators have no case powers."},
	"scope":        {"承認範囲外です。", "Outside the approved scope."},
	"seal":         {"保存されている内容が、確定し承認された版と一致しません。", "What is stored no longer matches the version as sealed and approved."},
	"window":       {"承認の有効期間外です。", "Outside the approval window."},
	"role":         {"あなたの役割ではこの操作はできません。", "Your role does not allow this."},
	"requester":    {"申請者のみが行えます。", "Only the requester may do this."},
	"need-to-know": {"閲覧権限がありません。", "This is not yours to see."},
	"two-person":   {"別の管理者による承認が必要です。", "Another administrator must approve this."},
	"invalid":      {"入力に誤りがあります。", "The input is not valid."},
	"signature":    {"本人の署名鍵による有効な署名が必要です。", "A valid signature with your own registered key is required."},
}

func ruleWords(lang, rule string) string {
	t, ok := ruleText[rule]
	if !ok {
		return ""
	}
	if lang == English {
		return t[1]
	}
	return t[0]
}

func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(service.JST).Format("2006-01-02 15:04 JST") // every time in JST, with the zone
}
