"""Every word of the portal's interface, English → Chinese (zh-CN): the one message catalog of
the portal. Templates and pages say the English (`_("Sign in")`); `{name}` placeholders are
filled after translation. Words of the platform's vocabularies are `contracts.labels`; texts
the services answer with (errors, policy titles, notifications) come in the person's language
from the services themselves."""

from chassis.i18n import add_translations

MESSAGES = {
    # the frame of every page
    "Changning Returnee Service Station": "长宁区留学人员创业服务站",
    "Returnee Service Station": "留学人员创业服务站",
    "Changning District Returnee Entrepreneur Service Station": "长宁区留学人员创业服务站",
    "Skip to the content": "跳到正文",
    "Main": "主导航",
    "Overview": "概览",
    "Matches": "资源匹配",
    "Consultations": "咨询",
    "Appointments": "预约",
    "My activities": "我的活动",
    "Notifications": "消息",
    "unread": "条未读",
    "Profile": "个人资料",
    "Sign out": "退出登录",
    "Policies": "政策",
    "Activities": "活动",
    "Register": "注册",
    "Sign in": "登录",
    "Home": "首页",
    # forms
    "Error:": "错误：",
    "(optional)": "（选填）",
    "Choose…": "请选择…",
    "Please check the form": "请检查表单",
    "This field": "此项",
    "{what}: {detail}": "{what}：{detail}",
    "Yes": "是",
    "No": "否",
    "I'd rather not say": "不愿透露",
    "Not yet": "还没有",
    # errors
    "Something went wrong": "出错了",
    "Page not found": "页面不存在",
    "Not possible": "无法完成",
    "This part of the platform is unavailable right now": "平台的这部分暂时无法使用",
    "The {service} cannot be reached at the moment. Nothing you entered is lost; please try "
    "again in a few minutes.": "{service}暂时无法连接。您填写的内容不会丢失，请几分钟后再试。",
    "service": "服务",
    "sign-in and profile service": "登录与个人资料服务",
    "policy consultation service": "政策咨询服务",
    "resource matching service": "资源匹配服务",
    "notification service": "消息通知服务",
    "activities service": "活动服务",
    "There is nothing at this address. Check the address, or start again from the home page.": (
        "该地址没有内容。请检查地址，或从首页重新开始。"
    ),
    "The form has expired": "表单已过期",
    "For your safety, forms are valid for one browser session. Go back, reload the page and "
    "send it again.": "为了您的安全，表单仅在一次浏览器会话内有效。请返回、刷新页面后重新提交。",
    "We could not show this page. The problem is recorded; please try again later.": (
        "无法显示此页面。问题已记录，请稍后再试。"
    ),
    "This cannot be done right now.": "目前无法完成此操作。",
    "Back to the start": "返回首页",
    "Your session has ended; please sign in again.": "您的登录已过期，请重新登录。",
    # home, policies, activities
    "Back from abroad, starting a company?": "海外学成归来，准备创业？",
    "The Changning returnee service station helps returnees who start companies: funding and "
    "policies you may qualify for, office space, loans and cross-border finance, mentors and "
    "partners, and advisors who answer your questions.": (
        "长宁区留学人员创业服务站为回国创业的留学人员提供服务：您可能符合的资助与政策、办公空间、"
        "贷款与跨境金融、创业导师与合作伙伴，以及为您答疑的服务站顾问。"
    ),
    "Go to my overview": "进入我的概览",
    "What the station offers": "服务站提供什么",
    "Which policies you are eligible for, with the reasons in plain words": (
        "您符合哪些政策，并用通俗的话说明理由"
    ),
    "Resources matched to your needs: financing, office space, incubators, mentors, partners": (
        "按您的需求匹配资源：融资、办公空间、孵化器、创业导师、合作伙伴"
    ),
    "Questions answered by the station's advisors, and appointments at the station": (
        "服务站顾问解答您的问题，并可预约到站咨询"
    ),
    "Exchange activities with partner organizations": "与合作机构的交流活动",
    "Upcoming activities": "近期活动",
    "All activities": "全部活动",
    "Activities cannot be shown right now.": "暂时无法显示活动。",
    "No activities are planned yet.": "暂无活动安排。",
    "The policy catalog cannot be shown right now.": "暂时无法显示政策目录。",
    "The whole policy catalog": "完整政策目录",
    "Programmes in effect for returnees who start companies. Sign in to see which you are "
    "eligible for, and why.": "面向回国创业留学人员的现行项目。登录后可查看您符合哪些项目及原因。",
    "Applications close on {date}": "申报截止日期：{date}",
    "all of these": "须全部满足",
    "one of these": "满足其一即可",
    "In effect from {start}": "自 {start} 起实施",
    "until {end}": "至 {end}",
    "Who may apply": "申请条件",
    "Levels of support": "支持档次",
    "Am I eligible?": "我是否符合？",
    "Ask about this programme": "咨询这个项目",
    "Sign in to see whether you are eligible": "登录查看您是否符合",
    "Exchange activities": "交流活动",
    "{n} seats left": "剩余 {n} 个名额",
    "More activities": "更多活动",
    "Organized by": "主办方",
    "You are signed up.": "您已报名。",
    "My check-in code": "我的签到码",
    "Sign up": "报名",
    "Sign in to sign up": "登录后报名",
    "Registration is closed.": "报名已截止。",
    # registering and signing in
    "One account for the station's services. It takes about five minutes; we ask only what "
    "the programmes and the matching need.": (
        "一个账户即可使用服务站的各项服务。大约需要五分钟；我们只询问政策项目和资源匹配所需的信息。"
    ),
    "Your account": "您的账户",
    "Email": "邮箱",
    "Password": "密码",
    "Password again": "再次输入密码",
    "At least 10 characters, with letters and digits.": "至少 10 个字符，须同时包含字母和数字。",
    "The two passwords differ.": "两次输入的密码不一致。",
    "Already registered?": "已经注册？",
    "No account yet?": "还没有账户？",
    "Forgot your password?": "忘记密码？",
    "About you": "关于您",
    "Full name": "姓名",
    "Mobile phone": "手机号码",
    "For text messages about appointments, e.g. +86 138 0013 8000.": (
        "用于接收预约短信，例如 +86 138 0013 8000。"
    ),
    "Date of birth": "出生日期",
    "Language of our messages to you": "我们给您发消息所用的语言",
    "Education": "教育经历",
    "Your degrees, abroad and in China. Eligibility for most programmes depends on them.": (
        "您在海外和国内获得的学位。大多数项目的申请资格取决于学历。"
    ),
    "Degree {n}": "学位 {n}",
    "University or school": "院校",
    "Country or region": "国家或地区",
    "Degree": "学位",
    "Subject": "专业",
    "Start date": "开始日期",
    "End date": "结束日期",
    "QS world ranking of the university": "院校的 QS 世界排名",
    "If you know it; some programmes ask for a top-ranked university.": (
        "如果您知道的话；部分项目要求排名靠前的院校。"
    ),
    "Add another degree": "再添加一个学位",
    "Your return and your start-up": "回国与创业情况",
    "Date you returned to China": "回国日期",
    "Did you work abroad?": "您是否有海外工作经历？",
    "Residence in Shanghai": "在沪居住身份",
    "Industry": "行业",
    "Stage of your start-up": "创业阶段",
    "What do you need?": "您需要什么？",
    "Choose all that apply: we match resources to these.": "可多选：我们据此为您匹配资源。",
    "Your company": "您的企业",
    "Have you registered a company?": "您是否已注册企业？",
    "If yes, tell us about it:": "如已注册，请填写企业信息：",
    "Company name": "企业名称",
    "District where it is registered": "注册所在区",
    "e.g. Changning": "例如：Changning（长宁）",
    "Registration date": "注册日期",
    "Registered capital (CNY)": "注册资本（元）",
    "Your shareholding (%)": "您的持股比例（%）",
    "I am the company's legal representative": "我是企业的法定代表人",
    "Are you the largest shareholder?": "您是否为第一大股东？",
    "Venture capital raised (CNY)": "已获风险投资（元）",
    "Your consent": "您的授权",
    "Each purpose is separate; you can change your mind at any time on your profile page.": (
        "每项用途单独授权；您可随时在个人资料页更改。"
    ),
    "Match me with resources": "为我匹配资源",
    "We use your industry, stage, needs and company district to find loans, office space, "
    "incubators, mentors and partners for you. Without it, we keep none of this for matching "
    "and you get no matches.": (
        "我们根据您的行业、创业阶段、需求和企业所在区，为您寻找贷款、办公空间、孵化器、创业导师和"
        "合作伙伴。不授权则我们不为匹配保存这些信息，您也不会收到匹配结果。"
    ),
    "Send me notifications": "给我发送消息通知",
    "Emails, and text messages if you gave a phone number, about your eligibility, matches, "
    "consultations and appointments. Your inbox on this site works either way.": (
        "通过邮件（如填写了手机号，也通过短信）告诉您资格、匹配、咨询和预约的进展。"
        "无论是否授权，本站的消息箱都可以使用。"
    ),
    "Share my profile with partner organizations": "与合作机构共享我的资料",
    "Partner banks, parks and incubators may see your profile to offer you their services. "
    "Without it, they only see what you send them yourself.": (
        "合作银行、园区和孵化器可以查看您的资料，以便向您提供服务。不授权则他们只能看到您主动发送的内容。"
    ),
    "Check your email": "请查收邮件",
    "We sent an email to {email}.": "我们已向 {email} 发送了一封邮件。",
    "We sent you an email.": "我们已向您发送了一封邮件。",
    "If it asks you to confirm your address, follow its link.": (
        "如邮件要求确认邮箱，请点击其中的链接。"
    ),
    "Then sign in: your eligibility and your matches are being worked out now.": (
        "然后登录：我们正在为您评估政策资格并匹配资源。"
    ),
    "You are signed out.": "您已退出登录。",
    # email and passwords
    "Confirm your email": "确认邮箱",
    "Thank you: your email address is confirmed.": "谢谢，您的邮箱已确认。",
    "This link does not work": "该链接无效",
    "Confirm that this email address is yours.": "请确认这个邮箱地址属于您。",
    "Confirm my email": "确认我的邮箱",
    "If an account uses this address, we have sent it a link to choose a new password.": (
        "如果有账户使用该邮箱，我们已向其发送设置新密码的链接。"
    ),
    "Tell us your email; we send you a link to choose a new password.": (
        "请填写您的邮箱，我们会发送设置新密码的链接。"
    ),
    "Send me the link": "发送链接",
    "Choose a new password": "设置新密码",
    "Set your password": "设置密码",
    "You were invited to the platform. Choose the password you will sign in with.": (
        "您已受邀使用本平台。请设置登录密码。"
    ),
    "New password": "新密码",
    "New password again": "再次输入新密码",
    "Save my password": "保存密码",
    "Your password is set.": "密码已设置。",
    "The link": "链接",
    # overview and eligibility
    "My overview": "我的概览",
    "Hello, {name}": "{name}，您好",
    "Programmes you may apply for": "您可以申请的项目",
    "Your eligibility cannot be shown right now.": "暂时无法显示您的政策资格。",
    "We are working out your eligibility; it appears here in a moment.": (
        "我们正在评估您的政策资格，稍后会显示在这里。"
    ),
    "Eligible": "符合条件",
    "Not eligible": "不符合条件",
    "We need more information": "需要更多信息",
    "To decide, we need to know more:": "为作出判断，我们还需要了解：",
    "Tell us {what}": "请告诉我们{what}",
    "Why: every condition": "原因：逐项条件",
    "About this programme": "项目详情",
    "Ask an advisor": "咨询顾问",
    "All my matches, with their reasons": "我的全部匹配及理由",
    "More": "更多",
    # matches and intentions
    "My matches": "我的匹配",
    "Resources matched to you": "为您匹配的资源",
    "Chosen for your needs, industry, stage and district. Tell us which interest you; a "
    "provider answers your intention.": (
        "根据您的需求、行业、阶段和所在区挑选。告诉我们您对哪些感兴趣；资源提供方会答复您的合作意向。"
    ),
    "Your matches cannot be shown right now.": "暂时无法显示您的匹配。",
    "No matches yet. They come from your needs and your consent to matching.": (
        "暂无匹配。匹配结果取决于您的需求以及您对资源匹配的授权。"
    ),
    "You are interested": "您感兴趣",
    "Why it suits you": "为什么适合您",
    "Interested": "感兴趣",
    "Not interested": "不感兴趣",
    "Noted: you are interested.": "已记录：您感兴趣。",
    "Noted: it is hidden.": "已记录：不再显示。",
    "Your intention is waiting for the provider's answer.": "您的合作意向正在等待提供方答复。",
    "Express a cooperation intention": "表达合作意向",
    "Your message to {organization}": "给{organization}的留言",
    "What you hope for, and how to reach you.": "您希望得到什么，以及如何联系您。",
    "Send my intention": "发送合作意向",
    "Your intention is sent; the provider will answer.": "合作意向已发送，提供方会答复您。",
    "My intentions": "我的合作意向",
    "My cooperation intentions": "我的合作意向",
    "Your intentions cannot be shown right now.": "暂时无法显示您的合作意向。",
    "You have not expressed an intention yet.": "您还没有表达过合作意向。",
    "See your matches": "查看您的匹配",
    "Sent on {date}": "发送于 {date}",
    "Answered on {date}": "答复于 {date}",
    "Your message": "您的留言",
    "Their answer": "对方答复",
    # consultations
    "Ask the station": "向服务站咨询",
    "Topic": "主题",
    "About a programme": "相关项目",
    "No programme in particular": "不针对具体项目",
    "Your question": "您的问题",
    "Send my question": "提交问题",
    "Your question is sent to the station's advisors.": "您的问题已提交给服务站顾问。",
    "My consultations": "我的咨询",
    "Your consultations cannot be shown right now.": "暂时无法显示您的咨询。",
    "You have not asked anything yet.": "您还没有提出过问题。",
    "Consultation": "咨询",
    "Asked on {date}": "提问于 {date}",
    "The conversation": "对话",
    "You": "您",
    "Advisor": "顾问",
    "The advisor is waiting for your reply.": "顾问正在等待您的回复。",
    "Your reply": "您的回复",
    "Send my reply": "发送回复",
    "Your reply is sent.": "回复已发送。",
    "My question is answered: close it": "问题已解决：关闭咨询",
    "The consultation is closed.": "咨询已关闭。",
    "The consultation is open again.": "咨询已重新打开。",
    "You rated this consultation {n} of 5.": "您给这次咨询的评分是 {n} 分（满分 5 分）。",
    "How helpful was the answer?": "答复对您有帮助吗？",
    "Your rating, 1 (not helpful) to 5 (very helpful)": "您的评分：1（没有帮助）到 5（非常有帮助）",
    "Comment": "评价",
    "Send my rating": "提交评分",
    "Thank you for your rating.": "感谢您的评分。",
    "Reopen": "重新打开",
    "All my consultations": "我的全部咨询",
    "Done.": "已完成。",
    "Funding and grants": "资金与补贴",
    "Policy questions": "政策咨询",
    "Residence and hukou": "落户",
    "Company registration": "企业注册",
    "Cross-border finance": "跨境金融",
    "Office space": "办公空间",
    "Anything else": "其他问题",
    # appointments
    "Appointments at the station": "到站预约",
    "My appointments": "我的预约",
    "Your appointments cannot be shown right now.": "暂时无法显示您的预约。",
    "You have no appointment.": "您没有预约。",
    "Booked": "已预约",
    "Cancelled": "已取消",
    "Cancel this appointment": "取消这个预约",
    "Your appointment is booked.": "预约成功。",
    "Your appointment is cancelled.": "预约已取消。",
    "Free times": "可预约时段",
    "Free times cannot be shown right now.": "暂时无法显示可预约时段。",
    "No free times at the moment; advisors publish new ones every week.": (
        "目前没有可预约的时段；顾问每周都会发布新的时段。"
    ),
    "What about?": "咨询内容",
    "Book this time": "预约这个时段",
    # my activities
    "You have not signed up for an activity on this device yet.": "您还没有在这台设备上报名活动。",
    "See the activities": "查看活动",
    "Seat confirmed": "名额已确认",
    "On the waiting list": "候补中",
    "Place {n} on the waiting list": "候补第 {n} 位",
    "QR code of the check-in code {code}": "签到码 {code} 的二维码",
    "Show it at the entrance, or tell the code:": "请在入口出示，或告知签到码：",
    "Cancel my registration": "取消报名",
    "Your registration is cancelled.": "报名已取消。",
    # notifications and preferences
    "{n} new since your last visit.": "自您上次查看以来有 {n} 条新消息。",
    "Nothing new since your last visit.": "自您上次查看以来没有新消息。",
    "No notifications yet.": "暂无消息。",
    "New:": "新消息：",
    "Notification preferences": "消息设置",
    "Your preferences cannot be shown right now.": "暂时无法显示您的消息设置。",
    "Inbox on this site": "本站消息箱",
    "Text message": "短信",
    "Quiet hours": "免打扰时段",
    "Emails and text messages wait until quiet hours end (Shanghai time). Nothing is lost.": (
        "免打扰时段内的邮件和短信会在时段结束后发送（上海时间），不会丢失。"
    ),
    "Hold messages during quiet hours": "在免打扰时段暂缓发送",
    "From": "开始时间",
    "Until": "结束时间",
    "Save my preferences": "保存设置",
    "Your preferences are saved.": "设置已保存。",
    # profile and consents
    "My profile": "我的资料",
    "What you tell us here decides your eligibility and your matches; both are worked out "
    "again when you save.": "这里的信息决定您的政策资格和资源匹配；保存后会重新评估。",
    "Save my profile": "保存资料",
    "Your profile is saved.": "资料已保存。",
    "given": "已授权",
    "withdrawn": "已撤回",
    "Save my consents": "保存授权",
    "Your consents are saved.": "授权已保存。",
    # my data and my account
    "Download my data": "下载我的数据",
    "Everything the platform holds about you: your profile and consents, your eligibility, "
    "consultations and appointments, matches and intentions, notifications and preferences, "
    "and your activity registrations.": (
        "平台保存的关于您的全部信息：资料和授权、政策资格、咨询和预约、匹配和合作意向、消息和消息设置，"
        "以及活动报名。"
    ),
    "Download as JSON": "下载 JSON 文件",
    "Download as a spreadsheet (XLSX)": "下载电子表格（XLSX）",
    "Your right under article 45 of the Personal Information Protection Law.": (
        "这是《个人信息保护法》第四十五条赋予您的权利。"
    ),
    "Everything the platform holds about you": "平台保存的关于您的全部信息",
    "Made on": "生成时间",
    "Your profile": "您的资料",
    "Your consents and their history": "您的授权及其历史",
    "Your eligibility, policy by policy": "您的政策资格（逐项政策）",
    "Your consultations with their messages": "您的咨询及对话",
    "Your appointments": "您的预约",
    "Your cooperation intentions": "您的合作意向",
    "Notifications sent to you": "发给您的消息",
    "Your notification preferences": "您的消息设置",
    "Your activity registrations": "您的活动报名",
    "Delete my account": "注销账户",
    "This deletes your account and everything the platform holds about you, in every service: "
    "profile, eligibility, consultations, appointments, matches and notifications. It cannot "
    "be undone.": (
        "这将删除您的账户以及平台各项服务中保存的关于您的全部信息：资料、政策资格、咨询、预约、匹配和消息。"
        "此操作无法撤销。"
    ),
    "Cooperation intentions a partner accepted stay counted, without your name.": (
        "已被合作机构接受的合作意向仍会计入统计，但不含您的姓名。"
    ),
    "Download my data first": "先下载我的数据",
    "I understand: delete my account and my data": "我已了解：注销我的账户并删除我的数据",
    "Tick the box to confirm.": "请勾选以确认。",
    "Your account and your data are deleted.": "您的账户和数据已删除。",
    # the staff console (advisors, providers, admins) and the district dashboard
    "This page is not for your account": "此页面不适用于您的账户",
    "You are signed in with an account that cannot open this page. Your own pages start "
    "from your home page.": ("您登录的账户无法打开此页面。您可从自己的首页进入可用的页面。"),
    "Consultation queue": "咨询队列",
    "Find a returnee": "查找留学人员",
    "Scan the QR code with the camera": "用摄像头扫描二维码",
    "The camera, reading the QR code": "正在读取二维码的摄像头画面",
    "The camera cannot be used here: type the code.": "此处无法使用摄像头：请输入签到码。",
    "Dead letters": "死信",
    "Events a service could not handle: read why, send them back, or throw them away.": (
        "服务无法处理的事件：查看原因，重新投递或丢弃。"
    ),
    "The event is sent back to its handler.": "事件已重新投递给处理程序。",
    "The dead letter is discarded.": "死信已丢弃。",
    "Service": "服务",
    "Event": "事件",
    "Why": "原因",
    "Attempts": "尝试次数",
    "When": "时间",
    "None: every event was handled.": "没有：所有事件都已处理。",
    "The event as it arrived": "收到的事件原文",
    "Traceback": "错误跟踪",
    "Send it back to its handler": "重新投递",
    "Discard": "丢弃",
    "Back to the dead letters": "返回死信列表",
    "Returnees registered": "注册人数",
    "The figures as a table": "以表格查看数据",
    "The new version (JSON)": "新版本（JSON）",
    "This is not valid JSON: {detail}": "这不是有效的 JSON：{detail}",
    "The new version is published; returnees are assessed again.": (
        "新版本已发布；将重新评估所有留学人员。"
    ),
    "Versions": "版本",
    "Version": "版本",
    "In force from": "生效日期",
    "Code": "编号",
    "In effect": "有效期",
    "Publish a new version": "发布新版本",
    "Edit the rules as JSON, the shape of the policy files. Preview first: it counts who "
    "would be eligible, and stores nothing.": (
        "以 JSON 编辑规则（与政策文件格式相同）。"
        "请先预览：预览只统计符合条件的人数，不保存任何内容。"
    ),
    "Preview the impact": "预览影响",
    "Publish the new version": "发布新版本",
    "Preview": "预览",
    "Eligible now": "目前符合条件",
    "Eligible with the new version": "新版本下符合条件",
    "Publish a new version of a programme, after a preview of its impact.": (
        "预览影响后，发布政策的新版本。"
    ),
    "Name, email, phone or company": "姓名、邮箱、手机号或公司名称",
    "At least two characters; part of a word is enough.": "至少两个字；输入词语的一部分即可。",
    "Find": "查找",
    "Nobody found.": "没有找到。",
    "{n} found": "找到 {n} 人",
    "Appointment slots": "预约时段",
    "Our resources": "我们的资源",
    "Intentions": "合作意向",
    "Our figures": "我们的数据",
    "Administration": "管理",
    "Organizations": "合作机构",
    "Staff": "工作人员",
    "District dashboard": "区级数据看板",
    "Nearest deadline first. Deadlines count the station's working hours; a clock waiting "
    "for the returnee is paused.": (
        "按最近的截止时间排列。截止时间按服务站工作时间计算；等待留学人员回复时计时暂停。"
    ),
    "All topics": "全部主题",
    "State": "状态",
    "All states": "全部状态",
    "Open (not closed)": "未关闭",
    "Show": "显示",
    "{n} consultations": "共 {n} 条咨询",
    "Deadline missed": "已超时",
    "Clock paused": "计时暂停",
    "Mine": "我的",
    "Nobody yet": "尚未分配",
    "First response": "首次答复",
    "Resolution": "办结",
    "No consultation matches.": "没有符合条件的咨询。",
    "overdue by {d} d {h} h {m} min": "已超时 {d} 天 {h} 小时 {m} 分钟",
    "{d} d {h} h {m} min left": "剩余 {d} 天 {h} 小时 {m} 分钟",
    "The returnee": "留学人员",
    "Assigned to another advisor.": "已分配给其他顾问。",
    "Nobody has taken it yet.": "尚无顾问接手。",
    "Assign to me": "分配给我",
    "Asks the returnee for information.": "请留学人员补充信息。",
    "Plain words; the returnee reads it in their portal and is notified.": (
        "请用通俗的语言；留学人员会收到通知，并在门户中阅读。"
    ),
    "Send the answer": "发送答复",
    "Ask for information": "请对方补充信息",
    "Close the consultation": "关闭咨询",
    "Rated {n} of 5.": "评分：{n} 分（满分 5 分）。",
    "Back to the queue": "返回咨询队列",
    "The consultation is yours.": "这条咨询已分配给您。",
    "Your answer is sent.": "您的答复已发送。",
    "Your question is sent; the clock waits for the returnee.": (
        "您的问题已发送；计时将暂停，等待留学人员回复。"
    ),
    "Company": "公司",
    "Needs": "需求",
    "Stage of the start-up": "创业阶段",
    "Eligibility": "政策资格",
    "This part cannot be shown right now.": "这部分暂时无法显示。",
    "Nothing yet.": "暂无。",
    "Not decided yet": "尚未确定",
    "Period": "时间段",
    "Day": "日",
    "Week": "周",
    "Earlier": "更早",
    "Later": "更晚",
    "{first} to {last}": "{first} 至 {last}",
    "No slot in this period.": "这段时间内没有时段。",
    "Time": "时间",
    "Place": "地点",
    "Who": "预约人",
    "{booked} of {capacity}": "已约 {booked} 人，共 {capacity} 人",
    "Publish a slot": "发布时段",
    "Starts": "开始",
    "Ends": "结束",
    "People at once": "可同时接待人数",
    "Publish the slot": "发布此时段",
    "The time slot is published.": "时段已发布。",
    "Create an activity": "创建活动",
    "{n} of {capacity} seats left": "剩余 {n} 个名额（共 {capacity} 个）",
    "No activity to come.": "暂无即将举行的活动。",
    "It is published at once: returnees see it and can sign up.": (
        "活动会立即发布：留学人员可以看到并报名。"
    ),
    "Kind": "类型",
    "Exchange": "交流会",
    "Site visit": "实地参访",
    "Briefing": "政策宣讲",
    "Training": "培训",
    "Title in Chinese": "中文标题",
    "Title in English": "英文标题",
    "Summary in Chinese": "中文简介",
    "Summary in English": "英文简介",
    "Venue": "场地",
    "Address": "地址",
    "Seats": "名额",
    "Publish the activity": "发布活动",
    "The activity is published.": "活动已发布。",
    "{n} on the waitlist": "候补 {n} 人",
    "Check-in at the door": "现场签到",
    "Registrations": "报名",
    "Nobody has signed up yet.": "还没有人报名。",
    "Name": "姓名",
    "Checked in": "已签到",
    "Waitlist, place {n}": "候补第 {n} 位",
    "Agreements": "签约",
    "None recorded.": "暂无记录。",
    "Record an agreement": "记录签约",
    "What was agreed": "签约内容",
    "Organizations that signed": "签约机构",
    "A returnee who signed (their id, from the registrations)": (
        "签约的留学人员（其编号，见报名名单）"
    ),
    "A returnee who signed": "签约的留学人员",
    "Signed on": "签约日期",
    "Record the agreement": "记录此签约",
    "The agreement is recorded.": "签约已记录。",
    "Report": "活动报告",
    "Seats held": "已占名额",
    "On the waitlist": "候补",
    "Came": "到场",
    "Organizations represented": "到场机构数",
    "Close the activity": "结束活动",
    "How it went": "活动情况",
    "Once closed, the report is final: no more check-ins or agreements.": (
        "结束后报告即为最终版本：不能再签到或记录签约。"
    ),
    "Close and write the report": "结束并生成报告",
    "The activity is closed; its report is below.": "活动已结束；报告见下方。",
    "Check-in": "签到",
    "{name} was already checked in.": "{name} 已签到过。",
    "Welcome, {name}: checked in.": "欢迎 {name}：签到成功。",
    "Check-in code": "签到码",
    "The code under the person's QR code; spaces and hyphens do not matter.": (
        "对方二维码下方的签到码；空格和连字符不影响。"
    ),
    "Check in": "签到",
    "Back to the activity": "返回活动",
    "Your account is not linked to an organization yet; the station's admin links it.": (
        "您的账户尚未关联机构；请联系服务站管理员关联。"
    ),
    "Withdrawn": "已撤回",
    "{left} of {capacity} places left": "剩余 {left} 个名额（共 {capacity} 个）",
    "Valid {start} to {end}": "有效期 {start} 至 {end}",
    "Withdraw": "撤回",
    "No resource published yet.": "尚未发布资源。",
    "Publish a resource": "发布资源",
    "Title": "标题",
    "Needs it serves": "可满足的需求",
    "For these industries (none: any)": "适用行业（不选：不限）",
    "For these stages (none: any)": "适用阶段（不选：不限）",
    "District": "区",
    "Places": "名额",
    "Valid from": "有效期起",
    "Valid until": "有效期至",
    "Description": "说明",
    "Publish the resource": "发布此资源",
    "The resource is published; matching proposes it to returnees.": (
        "资源已发布；系统会将其推荐给合适的留学人员。"
    ),
    "The resource is withdrawn.": "资源已撤回。",
    "Cooperation intentions": "合作意向",
    "Returnees who would like to work with you. Accepting takes one place of the resource.": (
        "希望与您合作的留学人员。接受将占用该资源的一个名额。"
    ),
    "Met at an activity": "活动现场达成",
    "Your answer: {text}": "您的答复：{text}",
    "Your message to the returnee": "给留学人员的留言",
    "Accept": "接受",
    "Decline": "婉拒",
    "No intention yet.": "暂无合作意向。",
    "Accepted: the returnee is told.": "已接受：已通知留学人员。",
    "Declined: the returnee is told.": "已婉拒：已通知留学人员。",
    "{n} cooperation intentions in all.": "共 {n} 条合作意向。",
    "By status": "按状态",
    "Status": "状态",
    "By resource": "按资源",
    "Resource": "资源",
    "By month": "按月份",
    "Month": "月份",
    "The station's partners: parks, banks, service providers.": (
        "服务站的合作伙伴：园区、银行、服务机构。"
    ),
    "Invite advisors, providers, admins and district officials; disable an account.": (
        "邀请顾问、合作机构人员、管理员和区级工作人员；停用账户。"
    ),
    "The district's figures and their spreadsheet.": "全区数据及其电子表格。",
    "Register an organization": "登记合作机构",
    "Contact email": "联系邮箱",
    "Register the organization": "登记此机构",
    "The organization is registered.": "机构已登记。",
    "Invited: {name} ({email}), account {id}.": "已邀请：{name}（{email}），账户编号 {id}。",
    "Invite someone": "邀请工作人员",
    "Role": "角色",
    "Provider (a partner organization)": "合作机构人员",
    "Admin": "管理员",
    "District official (statistics only)": "区级工作人员（仅查看统计）",
    "Organization (providers)": "所属机构（合作机构人员）",
    "Organization": "所属机构",
    "Language of our messages to them": "发给对方的消息语言",
    "Send the invitation": "发送邀请",
    "Disable": "停用",
    "Enable": "启用",
    "The invitation is sent: they choose their password from the email.": (
        "邀请已发送：对方将通过邮件设置密码。"
    ),
    "The account is disabled: it cannot sign in.": "账户已停用：无法登录。",
    "The account is enabled again.": "账户已重新启用。",
    "Figures for Changning's returnee entrepreneurs. Counts only: no one is named here.": (
        "长宁区留学人员创业的统计数据。只有数量，不显示任何个人信息。"
    ),
    "Show this period": "显示这段时间",
    "This month": "本月",
    "Last 30 days": "最近 30 天",
    "Last 90 days": "最近 90 天",
    "This year": "今年",
    "The figures cannot be shown right now; please try again in a few minutes.": (
        "数据暂时无法显示；请几分钟后再试。"
    ),
    "Some figures are counted only from a later day than the period's first: they may be low.": (
        "部分数据的统计起点晚于所选时间段的第一天：数值可能偏低。"
    ),
    "Returnees on the platform": "平台上的留学人员",
    "Consultations asked": "咨询数",
    "First answers on time": "首次答复及时率",
    "Resolved on time": "按时办结率",
    "Average rating (1–5)": "平均评分（1–5）",
    "Agreements signed": "签约数",
    "Registrations over time": "注册人数变化",
    "Registrations by industry": "按行业的注册人数",
    "Registrations by country of study": "按留学国家的注册人数",
    "Registrations by stage of the start-up": "按创业阶段的注册人数",
    "Newly eligible, by programme": "按政策的新增符合条件人数",
    "Programme": "政策",
    "From match to cooperation": "从匹配到合作",
    "Step": "环节",
    "Activities and attendance": "活动与到场",
    "What": "项目",
    "Number": "数量",
    "None in this period.": "这段时间内没有。",
    "Stage": "阶段",
    "Returnees": "留学人员",
    "No overseas degree": "无海外学位",
    "Not said": "未填写",
    "Proposed to a returnee": "推荐给留学人员",
    "Intentions expressed": "提出合作意向",
    "Accepted": "已接受",
    "Activities held": "举办活动",
    "Seats taken": "报名名额",
    "People who came": "到场人数",
    "Enter a date as YYYY-MM-DD.": "请按 YYYY-MM-DD 格式填写日期。",
    "The first day comes after the last.": "开始日期晚于结束日期。",
    "district statistics service": "区级统计服务",
    "Capacity": "名额",
    "Summary": "简介",
    # the staff console: imports, canned replies, staff, a resource's places, intentions
    (
        "A returnee who came and an organization that was here want to work together: the "
        "organization is asked to accept it."
    ): ("到场的海归与在场的机构希望合作：由该机构确认接受。"),
    "Accounts": "账号",
    "Organized with (partner organizations)": "合办机构",
    "Action": "操作",
    "Active": "已启用",
    "Add a canned reply": "添加常用回复",
    "All canned replies": "全部常用回复",
    "All imports": "全部导入",
    "All places, those already taken included ({taken} now).": (
        "名额总数，包括已被占用的（目前 {taken} 个）。"
    ),
    "Already there": "已存在",
    "Answers advisors often give, per topic, in Chinese and English.": (
        "顾问常用的答复，按主题，中英文各一份。"
    ),
    (
        "Answers advisors often give, per topic, in Chinese and English: an advisor "
        "starts a reply with one and adapts it."
    ): ("顾问常用的答复，按主题，中英文各一份：顾问可以以此开头，再按情况修改。"),
    "Canned replies": "常用回复",
    "Canned replies for this topic": "本主题的常用回复",
    "Canned reply": "常用回复",
    "Change places or validity": "修改名额或有效期",
    "Choose a file to upload.": "请选择要上传的文件。",
    "Choose what the file holds.": "请选择文件的内容类型。",
    "Column": "列",
    "Created": "已创建",
    "Delete the canned reply": "删除该常用回复",
    "Disabled": "已停用",
    "District official": "区级工作人员",
    "Download the row errors (CSV)": "下载出错的行（CSV）",
    "Empty: from any day.": "留空：不限开始日期。",
    "Empty: no end.": "留空：长期有效。",
    "File": "文件",
    "Finished.": "已完成。",
    "Headers in English or Chinese, as in the template. CSV in UTF-8 or GB18030.": (
        "表头可用英文或中文，与模板一致。CSV 文件请用 UTF-8 或 GB18030 编码。"
    ),
    "Import": "导入",
    "Import of {file}": "导入 {file}",
    "Importing…": "正在导入……",
    "Imports": "批量导入",
    "In Chinese": "中文",
    "In English": "英文",
    "Insert in Chinese": "插入中文",
    "Insert in English": "插入英文",
    "Intentions met here": "现场达成的合作意向",
    "Invalid": "无效",
    "Invited": "已邀请",
    "No canned reply yet.": "尚无常用回复。",
    "Once a returnee has checked in, an intention met here can be recorded for them.": (
        "海归签到后，即可为其记录在本活动达成的合作意向。"
    ),
    "Problem": "问题",
    "Progress": "进度",
    "Provider": "合作机构用户",
    "Record a cooperation intention": "记录合作意向",
    "Record the intention": "记录该意向",
    "Refresh to see the progress": "刷新以查看进度",
    "Resources": "资源",
    (
        "Returnees registered on paper, partner organizations or their resources, from a "
        "spreadsheet. Each row is checked by the rules of the form it replaces: valid "
        "rows are imported, invalid ones are listed with the reason."
    ): (
        "从电子表格导入纸质登记的海归、合作机构或其资源。每一行都按对应表单的规则检查：有"
        "效的行会被导入，无效的行会列出原因。"
    ),
    (
        "Returnees, organizations or resources from a spreadsheet, with the rows that "
        "could not be imported."
    ): ("从电子表格导入海归、机构或资源，并列出未能导入的行。"),
    "Row": "行",
    "Rows": "行数",
    "Rows not imported": "未导入的行",
    "Save the canned reply": "保存常用回复",
    "Save the changes": "保存修改",
    "Start your message with one of them, in the returnee's language, then adapt it.": (
        "选择一条，以海归使用的语言作为消息开头，再按情况修改。"
    ),
    "Stopped": "已中止",
    "Stopped: {why}": "已中止：{why}",
    "Template for {what} (XLSX)": "{what}模板（XLSX）",
    "Templates": "模板",
    "Text": "内容",
    "Text (Chinese)": "内容（中文）",
    "Text (English)": "内容（英文）",
    "The canned reply is deleted.": "该常用回复已删除。",
    "The canned reply is saved; advisors can insert it now.": (
        "常用回复已保存，顾问现在可以插入使用。"
    ),
    "The file (.xlsx or .csv)": "文件（.xlsx 或 .csv）",
    "The file has no rows under its header.": "文件的表头下没有数据行。",
    "The file is larger than {size} MB.": "文件超过 {size} MB。",
    "The first {shown} problems of {total}; the file has them all.": (
        "共 {total} 个问题，此处显示前 {shown} 个；下载的文件包含全部。"
    ),
    "The import stopped on an unexpected error.": "导入因意外错误中止。",
    "The intention is recorded; the organization answers it.": "合作意向已记录，将由该机构答复。",
    "The resource is changed; matching proposes it anew.": "资源已修改，系统将据此重新匹配。",
    "The resource is withdrawn: publish it again to offer it.": (
        "该资源已撤回：如需继续提供，请重新发布。"
    ),
    "The returnee (checked in)": "海归（已签到）",
    "The service refused the import.": "服务拒绝了本次导入。",
    "This file cannot be read: upload a .csv (UTF-8 or GB18030) or .xlsx file.": (
        "无法读取该文件：请上传 .csv（UTF-8 或 GB18030 编码）或 .xlsx 文件。"
    ),
    "Title (Chinese)": "标题（中文）",
    "Title (English)": "标题（英文）",
    "Unknown columns: {columns}. The template lists the columns.": (
        "无法识别的列：{columns}。模板中列出了所有可用的列。"
    ),
    "Upload the file again to finish it: rows imported already are not created twice.": (
        "再次上传该文件即可完成导入：已导入的行不会重复创建。"
    ),
    "What the file holds": "文件内容",
    "What they want to do together": "双方希望合作的内容",
    "With the organization": "合作机构",
    "Your recent imports": "您最近的导入",
    "Your sign-in ran out during the import.": "导入过程中您的登录已过期。",
    "{done} of {total} rows answered": "已处理 {done} / {total} 行",
    "{service} does not answer.": "{service} 没有响应。",
}

add_translations(MESSAGES)
