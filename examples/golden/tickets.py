"""Support tickets of the triage golden set, by label: English, other languages, long ones.

Each entry is (text, plausible wrong label or None). The wrong label is the
confusion a triage model realistically makes on that ticket; generate.py
draws the example candidates' mistakes from these.
"""

BILLING = [
    ("I was charged twice for my March subscription. Can you refund the duplicate?", None),
    ("Why did my invoice go up from $49 to $79 this month? Nobody told us about a price change.", None),
    ("Please send me a VAT invoice for order #88213, our accounting needs our company VAT number on it.", None),
    ("My card was declined but the money still left my bank account.", None),
    ("How do I switch from monthly to annual billing and get the discount?", None),
    ("Refund request: I cancelled within the 14-day trial window but was billed anyway.", None),
    ("The invoice PDF link in the email returns a 404.", "outage"),
    ("Can we pay by bank transfer instead of credit card? Our finance team doesn't allow cards.", None),
    ("We downgraded to the Starter plan last week but were charged for Pro again.", None),
    ("charged 3x for the same order!!! fix this now", None),
    ("Where can I update the billing address that appears on invoices?", "account"),
    ("Our purchase order number has to appear on every invoice. Where do I add it?", None),
    ("I see a charge from you I don't recognise: GHS*CLOUD 19.99. What is it?", None),
    ("Is there a nonprofit discount? We are a registered charity.", "other"),
    ("The proration on my upgrade looks wrong - I was charged the full month even though I upgraded on the 28th.", None),
    ("Please cancel the auto-renewal on our annual plan; it renews on 1 June.", "account"),
    ("The credit for last month's outage that your support promised never appeared on our invoice.", "outage"),
    ("Your sales tax calculation is wrong for Oregon; we shouldn't be charged sales tax at all.", None),
    ("How do I add a second credit card as a backup payment method?", "account"),
    ("Received a 'payment failed' email but my card is valid until 2027.", None),
    ("Can I get a receipt for the seat add-on I bought yesterday?", None),
    ("We were billed for 25 seats but only have 18 active users.", "account"),
    ("refund pls", None),
    ("The currency on our invoices switched from EUR to USD. Please switch it back.", None),
    ("Our invoice shows usage overage charges of $412 but the dashboard says we're under quota.", None),
    ("Do you accept PayPal?", "other"),
    ("The coupon code SPRING20 was not applied to my renewal.", None),
    ("My free trial ended and I was charged even though I had deleted my workspace.", "account"),
    ("I need copies of all invoices from 2023 for an audit. Can you email them in one zip?", None),
    ("Why is there a $0.50 authorization hold on my card?", None),
    ("Please remove the Premium Support add-on from our next invoice, we no longer need it.", None),
    ("Does the student discount apply to the Team plan?", "other"),
    ("Chargeback notice: our bank disputes invoice INV-2024-0571. What documentation do you need?", None),
    ("The billing page keeps spinning when I try to change the plan.", "outage"),
    ("Invoice INV-1182 lists the wrong company name.", None),
    ("How much will it cost to add 10 more seats mid-cycle?", None),
    ("Can you extend the payment terms on our invoice to net 60?", None),
    ("Double charge again.", None),
    ("Our finance team needs the invoices sent to ap@northwind.example instead of my inbox.", "account"),
    ("I was promised 20% off for 12 months by your sales rep but the renewal is full price.", None),
    ("Why was I charged in advance for next year when I asked to pay quarterly?", None),
    ("Can you waive the late fee? The transfer was delayed by our bank holiday.", None),
]

OUTAGE = [
    ("The dashboard is down for everyone in our team - 502 Bad Gateway since 09:40 UTC.", None),
    ("API returning 503 on all requests to /v2/orders, our checkout is broken.", None),
    ("Webhooks stopped arriving about an hour ago. Nothing in the delivery log either.", None),
    ("Login page just spins forever, can't get in. Is something down?", "account"),
    ("Site down??", None),
    ("Our EU region workspace has been unreachable for 20 minutes and the status page still says all green.", None),
    ("Latency on the search API jumped from 80ms to 9 seconds after 14:00 CET.", None),
    ("File uploads fail with 'network error' for every file, even 1 KB ones.", None),
    ("The mobile app shows 'Service unavailable' on both iOS and Android.", None),
    ("Scheduled reports didn't go out this morning for any of our 40 customers.", "other"),
    ("Is there an incident? Data sync between our CRM and your app has been stuck since last night.", None),
    ("Everything is timing out. Production is down for us.", None),
    ("SSO logins fail with a SAML error for all users since your maintenance window.", "account"),
    ("The export job has been queued for 6 hours; normally it takes 2 minutes.", "other"),
    ("Emails sent through your platform are bouncing with '421 temporary failure'.", None),
    ("Real-time dashboard numbers froze at 10:12 and have not updated since.", None),
    ("We get 500 Internal Server Error when saving any record.", None),
    ("Push notifications stopped working across all our apps about 30 min ago.", None),
    ("Your API is throttling us at 10 requests a minute although nothing changed on our side.", "billing"),
    ("Websocket connections drop every few seconds, our live chat widget is unusable.", None),
    ("Payments page down - customers can't check out", "billing"),
    ("getting error 504 gateway timeout", None),
    ("Search returns zero results for every query since the deploy this morning.", None),
    ("Status page says degraded performance - any ETA? Our agents can't load tickets.", None),
    ("All our integrations show 'disconnected' at the same time.", None),
    ("Images on the CDN return 403 for all our assets.", None),
    ("Unable to reach the API from us-east-1, traceroute dies at your edge.", None),
    ("Is the incident in Asia-Pacific resolved? We're still seeing errors from Singapore.", None),
    ("Backups failed last night with 'storage backend unavailable'.", None),
    ("Batch import is stuck at 0% for every upload.", None),
    ("down again", None),
    ("Nobody on our team can open any document, it just says 'Something went wrong'.", None),
    ("The public booking page for our clinic shows a blank screen for patients.", None),
    ("Our status badge shows 'major outage' and none of our API keys work.", "account"),
]

ACCOUNT = [
    ("How do I reset my password? The reset email never arrives.", None),
    ("Please delete my account and all associated data under GDPR.", None),
    ("I need to change the email address on my account to my new work email.", None),
    ("Locked out after too many login attempts, how long until I can try again?", None),
    ("Can you transfer ownership of our workspace from Maria to me? Maria left the company.", None),
    ("I lost my phone and can't get the 2FA codes. How do I regain access?", None),
    ("How do I add a new team member with admin rights?", None),
    ("Please merge my two accounts, I accidentally signed up twice.", None),
    ("My profile still shows my old last name, how do I change it?", None),
    ("A former employee still has access; how do we remove him immediately?", None),
    ("Can't log in - it says my account is deactivated.", "outage"),
    ("How can I enable single sign-on with Okta for our org?", "feature-request"),
    ("I want to change the role of three users from editor to viewer.", None),
    ("reset password", None),
    ("Where do I download a copy of all my personal data?", None),
    ("The verification email link says it has expired.", None),
    ("Please unlock the account for j.doe@contoso.example.", None),
    ("How do I leave a workspace I was invited to by mistake?", None),
    ("Can we have two owners on one account?", None),
    ("Our admin left and nobody has owner permissions anymore. How do we recover control?", None),
    ("Can I change the timezone on my profile from PST to CET?", None),
    ("I keep getting logged out every 5 minutes.", "outage"),
    ("How do I rotate my API key? I think it leaked.", None),
    ("I'd like to close my account but keep my invoices.", "billing"),
    ("Why was my account suspended? I didn't get any warning.", "billing"),
    ("Please add my colleague Tom as a second admin.", None),
    ("Can I change the name of our organization?", None),
    ("How do I recover an account registered with an email I no longer have access to?", None),
    ("The invite link for new users doesn't work, it says 'invalid token'.", "outage"),
    ("Please remove my phone number from my profile.", None),
    ("2fa not working", None),
    ("How do I switch my login from Google sign-in to email and password?", None),
    ("Can you tell me which email address my account is registered under? I tried three.", None),
    ("Please set up a sandbox user for our QA team with read-only rights.", None),
]

FEATURE_REQUEST = [
    ("It would be great if we could export reports to Excel, not just CSV.", None),
    ("Please add dark mode to the web app.", None),
    ("Any plans for a native Linux desktop client?", "other"),
    ("Feature request: let us schedule messages to be sent later.", None),
    ("Could you support webhooks for the 'ticket closed' event?", None),
    ("We'd love an API endpoint to bulk-update contacts.", None),
    ("Please allow custom fields on the invoice template.", "billing"),
    ("Can you add a Slack integration that posts daily summaries?", None),
    ("Would be nice to have keyboard shortcuts for archiving.", None),
    ("Suggestion: show the total at the bottom of every table column.", None),
    ("Please support SAML SSO on the Team plan, not just Enterprise.", "account"),
    ("Add two-factor authentication with hardware keys (WebAuthn).", "account"),
    ("Can the mobile app work offline?", "other"),
    ("Idea: let admins set a default language for the whole workspace.", None),
    ("We need more than 5 dashboards per workspace, ideally around 20.", "billing"),
    ("We need audit logs that we can stream to our SIEM.", None),
    ("Please publish a Terraform provider.", None),
    ("Could the calendar view show weekends in a different colour?", None),
    ("It'd be really useful to pin comments to the top of a thread.", None),
    ("Support for Markdown tables in notes, please!", None),
    ("Request: a read-only role for auditors.", "account"),
    ("Allow exporting the whole workspace as JSON for backups.", None),
    ("Add Google Sheets sync", None),
    ("dark mode pls", None),
    ("Any chance of a Zapier trigger for new sign-ups?", None),
    ("Could you let us customise the email notification templates?", None),
    ("Please add an option to hide archived projects from search.", None),
    ("Would love recurring tasks with custom intervals like every 3rd Monday.", None),
    ("Bulk delete for attachments would save us hours every month.", None),
    ("Please let us set different working hours per team for SLA timers.", None),
    ("Can you add a 'snooze until' option for notifications?", None),
]

OTHER = [
    ("Do you have a partner program for agencies?", None),
    ("Thanks for the quick help yesterday, everything works now!", None),
    ("Where can I find your SOC 2 report?", None),
    ("Are you hiring frontend engineers?", None),
    ("What is your data retention policy for deleted projects?", "account"),
    ("Can we get a sticker pack for our office? Big fans here.", None),
    ("Is your company attending KubeCon this year?", None),
    ("How does your product compare to Zendesk?", None),
    ("We're writing a case study; may we quote your CEO?", None),
    ("hi", None),
    ("Which sub-processors do you use for EU customers?", None),
    ("Just wanted to say the new onboarding is great.", None),
    ("Is there a public roadmap?", "feature-request"),
    ("Can I speak to someone in sales about an enterprise quote?", "billing"),
    ("Where is your company registered for tax purposes?", "billing"),
    ("Do you offer training sessions for new team members?", None),
    ("Do you have a bug bounty program?", None),
    ("Unsubscribe me from marketing emails please.", "account"),
    ("Do you integrate with Salesforce?", "feature-request"),
    ("What's the difference between a workspace and a project?", None),
    ("Please fill in the attached vendor security questionnaire.", None),
    ("test", None),
    ("Can your API be used from a React Native app?", None),
    ("Our legal team needs a signed DPA.", None),
    ("Who should I contact about a press inquiry?", None),
    ("Is there an on-premise version of your product?", "feature-request"),
    ("Congrats on the funding round!", None),
]

# Tickets in other languages: (label, text, plausible wrong label or None).
NON_ENGLISH = [
    ("billing", "Me han cobrado dos veces la suscripción de este mes. ¿Pueden devolverme el importe duplicado?", None),
    ("billing", "Bitte senden Sie uns eine korrigierte Rechnung mit unserer USt-IdNr. DE812345678.", None),
    ("billing", "Bonjour, j'ai été prélevé alors que j'avais résilié mon abonnement le mois dernier. Merci de me rembourser.", "account"),
    ("billing", "Minha fatura veio com um valor maior do que o plano contratado. Podem verificar?", None),
    ("billing", "今月の請求額が先月の倍になっています。理由を教えてください。", None),
    ("billing", "Vorrei ricevere la fattura elettronica con il codice SDI della nostra azienda.", None),
    ("billing", "Kunnen jullie de factuur op naam van onze BV zetten in plaats van op mijn naam?", "account"),
    ("outage", "Seit 8 Uhr ist das Dashboard nicht erreichbar, wir bekommen nur Fehler 502.", None),
    ("outage", "Votre API ne répond plus depuis 20 minutes, toutes nos requêtes expirent.", None),
    ("outage", "La aplicación no carga desde esta mañana, aparece 'servicio no disponible'.", None),
    ("outage", "サービスにアクセスできません。エラー503が表示されます。", None),
    ("outage", "O sistema está fora do ar para toda a nossa equipe desde as 10h.", None),
    ("outage", "Sinds vanochtend kunnen we niet meer inloggen, de pagina geeft een time-out.", "account"),
    ("account", "No puedo iniciar sesión, olvidé mi contraseña y el correo de recuperación no llega.", None),
    ("account", "Wie kann ich die E-Mail-Adresse meines Kontos ändern?", None),
    ("account", "Je souhaite supprimer définitivement mon compte et toutes mes données.", None),
    ("account", "Ho perso il telefono con l'app di autenticazione, come posso accedere al mio account?", None),
    ("account", "我忘记了密码，重置邮件一直收不到。", None),
    ("account", "Como faço para transferir a propriedade da conta para outro administrador?", None),
    ("feature-request", "Es wäre toll, wenn man Berichte direkt als PDF exportieren könnte.", None),
    ("feature-request", "Pourriez-vous ajouter une intégration avec Microsoft Teams ?", None),
    ("feature-request", "¿Tienen pensado añadir modo oscuro a la aplicación móvil?", "other"),
    ("feature-request", "ダークモードを追加してほしいです。", None),
    ("feature-request", "Seria ótimo poder agendar relatórios semanais por e-mail.", None),
    ("feature-request", "엑셀로 내보내기 기능을 추가해 주세요.", None),
    ("other", "¿Tienen oficinas en México o algún distribuidor local?", None),
    ("other", "Gibt es Schulungen auf Deutsch für unser Team?", "feature-request"),
    ("other", "Merci beaucoup pour votre aide rapide, tout fonctionne maintenant.", None),
    ("other", "Avete un programma di partnership per rivenditori?", None),
    ("other", "御社のセキュリティ認証について資料をいただけますか。", None),
    ("other", "Czy macie polską wersję dokumentacji?", None),
]

# Long tickets, written the way customers write them: context first, the
# actual request somewhere in the middle, a signature at the end.
LONG = [
    ("billing", """Hello,

I'm the office manager at Brightline Dental (3 locations). We moved from the Team plan to the Business plan on the 14th of last month after talking to Jenny from your sales team. She told us the difference would be prorated and that we'd get the first month of the higher tier at the old price as a thank-you for staying with you.

Instead, the invoice that arrived this morning (INV-2024-1093) charges the full Business price for the whole month AND still has a line for the Team plan for the same period. So we're effectively paying twice for the 14th to the 31st. Our accountant flagged it straight away.

Could you please issue a corrected invoice and refund the difference to the card on file? I've attached the email from Jenny for reference.

Thanks,
Carla Mendes
Office Manager, Brightline Dental""", None),
    ("billing", """Hi there, long-time customer here. Something odd is going on with our renewal. Our annual plan renewed automatically on 2 March, which is fine, but the amount was $4,860 instead of the $3,600 we paid last year. I checked your pricing page and the list price for 30 seats is indeed $3,600, and we haven't added any seats (we actually removed two people in January). The only thing I can think of is that the renewal picked up the seat count from before we removed those users, or that some add-on got switched on without us asking. We didn't get a renewal reminder email either, which I thought you were supposed to send 30 days in advance. Can someone break down what we were charged for and refund whatever is wrong? Happy to jump on a call if that's quicker. - Dev, IT lead at Koala Logistics""", None),
    ("billing", """Good afternoon,

We are a small charity and our treasurer has asked me to sort out our payment method before the end of the financial year. Currently the subscription is paid from my personal credit card and I claim it back every month, which is a pain for everyone involved.

Could you tell me: (1) whether we can move the subscription to the charity's own card without losing our discounted rate, (2) whether the invoices can be re-issued in the charity's name for the past 12 months so our books are consistent, and (3) whether we can pay annually by bank transfer instead?

I don't want to break anything with our account or lose any of our data while doing this, so please advise on the safest way.

Kind regards,
Margaret O'Neill
Volunteer Coordinator""", "account"),
    ("billing", """Hey team,

Not sure if this is the right place. Our finance system flagged three charges from you on the same day last week: $29.00, $29.00 and $58.00. We only have one workspace and the plan is $29/month. I looked in the billing section of the app and it only shows one invoice for this month. I tried to log in to the old workspace my colleague created last year to see if it's coming from there, but I can't remember the password and the reset email isn't arriving.

Can you check whether there's a second subscription running somewhere under our company domain and cancel it, and refund the extra charges?

Cheers,
Sam""", "account"),
    ("billing", """To whom it may concern,

I am writing regarding invoice number INV-88710, dated 1 April, addressed to Hoffmann & Partner Steuerberatung. The invoice states a total of EUR 1,428.00 including 19% VAT. As a business customer located in Germany with a valid VAT ID (DE 298 441 017), which we entered during sign-up, we would expect either reverse charge to apply or, if you invoice from a German entity, for your own VAT ID to appear on the invoice. Neither is the case, and our auditors will not accept the document in its current form.

Please issue a corrected invoice that complies with the requirements of § 14 UStG, and let us know which of your entities we contract with so we can update our supplier records.

With kind regards,
Julia Hoffmann""", None),
    ("outage", """Hi,

This is urgent. Since roughly 07:50 UTC our production integration has been failing. Every call to the events endpoint returns HTTP 503 with an HTML body instead of JSON, which breaks our parser and our whole ingestion pipeline. We run about 2,000 requests per minute from three regions (eu-west-1, us-east-1, ap-southeast-2) and all three see the same thing, so it's not a network issue on our side. Our API keys haven't changed and the same code was working fine at 07:45.

Your status page shows everything operational. Can you confirm whether there is an incident, and give us an ETA? We have a customer-facing SLA so we need to communicate something within the hour.

Request IDs from a few failed calls: req_8f2a91, req_8f2b07, req_8f2c44.

Thanks,
Priya Natarajan
Platform Engineering, Loop Analytics""", None),
    ("outage", """Hello support,

I'm not sure whether this is on your side or ours, so apologies in advance. Starting yesterday afternoon, none of the scheduled exports we configured have run. We have 12 of them, running every hour, and the last successful one was at 15:00. The export history page shows them as 'pending' forever. I tried pausing and resuming one, and creating a brand-new export as a test, and that one is also stuck on pending.

We haven't changed anything in our account settings, and our subscription is paid up (I double-checked the billing page). A colleague in another company using your product says theirs are stuck too, so I suspect it's a wider problem with your job queue.

Could you check? These exports feed our morning reports to management.

Regards,
Tomasz""", "billing"),
    ("outage", """Hi all - we're seeing intermittent failures when our users try to sign in via the mobile app. About a third of login attempts end with 'Unable to connect to server', the other two thirds work after a long delay (20-30 seconds). It started around 11:00 CET. The web app seems slower than usual but works. We first thought it was our users' passwords or accounts being locked, but the same test account fails and succeeds alternately with the same credentials, so it's clearly not an account problem. Our monitoring shows TLS handshakes to your API timing out. Anything going on with your load balancers? - Ahmed, Mobile Lead""", "account"),
    ("outage", """Good morning,

Our warehouse staff rely on your barcode scanning app during the night shift. Last night between 01:30 and 04:10 the app could not sync at all; every scan was queued locally and then about 300 of them were lost when the app was restarted. Today it seems to work again, but we need to know what happened, whether there was an incident on your side during that window, and whether the lost scans can be recovered from your servers.

This has cost us a full morning of re-counting stock. If this was an outage we'd also like to know what you're doing to prevent it from happening again.

Best regards,
Eline van der Berg
Operations, Dutch Fresh Foods""", None),
    ("outage", """Hey, quick heads-up and a question. Around 9 AM PT our Zapier zaps that use your app started failing with 'Authentication failed', and the ones that still authenticate are returning empty data. I reconnected the integration (it let me log in fine) but it still fails. Then I tried the API directly with curl and got 502s about half of the time. We're on the Pro plan, nothing changed on our end, and your Twitter account doesn't mention anything. Is this a known incident? We've got about 40 automations stuck right now.""", None),
    ("account", """Hi,

I'm the new IT administrator at Greenfield Academy. My predecessor, David Lowe, set up our school's workspace three years ago using his personal Gmail address, and he has since left the school and is not responding to emails. As a result, nobody at the school has owner rights. We can still log in as regular members, but we can't add new teachers, remove students who left, or change any settings.

We can provide proof that we are the school (letter on headed paper signed by the head teacher, the domain greenfield-academy.example that all our members use, and the invoices, which are paid by the school's bank account).

What is the process for transferring ownership of the workspace to me?

Many thanks,
Rachel Adeyemi
IT Administrator""", None),
    ("account", """Hello, I've been trying to log in for two days now. I use the 'Sign in with Microsoft' button because that's how I signed up, but after the Microsoft page it comes back to your site with 'No account found for this identity'. My colleagues can still log in the same way. I think it might be because our company renamed us from contoso-uk to contoso-europe last month and all our email addresses changed from @contoso.co.uk to @contoso.eu. Could you update my account so that it uses my new address (m.brown@contoso.eu)? All my projects are under the old one and I can't lose them. Thanks, Michael""", None),
    ("account", """Dear support,

In line with Article 17 of the GDPR I request the erasure of all personal data you hold about me, including my account (registered with anna.kowalska@posteo.example), any backups, logs containing my IP address, and data shared with your sub-processors. I no longer use your service.

Please also confirm in writing once the deletion has been completed, and let me know if any data must be retained for legal reasons (for example invoices) and for how long.

I'd appreciate it if you could also make sure I am not charged again, although I believe my subscription already ended in January.

Regards,
Anna Kowalska""", "billing"),
    ("account", """Hi team,

We're rolling out your tool to the whole engineering department (about 140 people) and I'd like to get the permissions right before we invite everyone. Right now everybody who joins gets the Editor role by default. What we'd like is: team leads as Admins of their own team's projects but not of the whole workspace, engineers as Editors only within their team, and a handful of people from QA as Viewers everywhere.

Is that possible with the roles you have today? If yes, could you point me to how to set the default role for new members and how to scope admin rights to a team? If it needs the Enterprise plan, just tell me and I'll talk to our procurement.

Thanks a lot,
Jonas""", "feature-request"),
    ("account", """Hello! Weird one. When I log in from my laptop everything is fine, but when I try to log in on my new phone it asks for a 2FA code and none of the codes from my authenticator app work. I moved the authenticator to the new phone last week using the app's transfer feature, and the codes look fine for other services. I still have my old phone but it's factory reset now. I tried the backup codes you gave me when I set up 2FA but I can only find three of them and all three say 'already used'. How can I reset 2FA on my account? I can verify my identity however you need.""", None),
    ("feature-request", """Hi product team,

First of all, we love the product; it's replaced three other tools for us. One thing that would make a huge difference for our agency: we manage about 60 client workspaces, and right now switching between them means logging out and back in or using separate browser profiles. It would be amazing to have a workspace switcher in the top bar, similar to how Slack does it, with a single login across all the workspaces we've been invited to.

Also, while I'm at it, a 'copy project to another workspace' action would save us a lot of time when we set up a new client from a template.

Is anything like this on the roadmap? Happy to test a beta.

Best,
Lucía Fernández
Operations Director, Norte Digital""", "account"),
    ("feature-request", """Hello, I'm the data lead at a mid-sized retailer and we use your reporting module a lot. Our analysts keep asking for the same thing: the ability to connect directly from our BI tool (we use Power BI, some teams use Tableau) instead of exporting CSVs every morning and uploading them to SharePoint. An ODBC or a read-only Postgres endpoint would be ideal, but even a documented REST endpoint that returns report results as JSON with pagination would do. Right now the export button is the only way and it caps at 50,000 rows, which is also a problem for us. Can you tell me if this is planned? If it's a paid add-on that's fine, we'd just need to know the timeline for our budgeting.""", None),
    ("feature-request", """Hi,

Our customer support team works across time zones (Manila, Lisbon and Austin). We need SLA timers that respect each team's business hours and local public holidays. At the moment the SLA clock runs 24/7, so tickets that arrive on Friday evening in Austin are 'breached' by Monday morning even though nobody was supposed to work on them.

Could you add per-team business hours and holiday calendars for SLAs? Bonus points if holidays could be imported from a Google Calendar.

We'd happily upgrade to a higher plan for this; it's the main reason our managers are asking us to look at other tools.

Thanks,
Inês Carvalho
Support Operations""", None),
    ("feature-request", """Hey folks. Small team here (6 people), we use your app for everything from sprint planning to our content calendar. A wishlist, in order of how much it would help us: 1) recurring tasks that regenerate when completed rather than on a fixed date, 2) being able to assign a task to two people, 3) a proper Gantt view with dependencies, 4) an option to mute notifications for a project without leaving it. I know some of these have been requested before on your forum (I upvoted them). Any idea whether any of them are coming this year? Keep up the good work!""", None),
    ("feature-request", """Dear product team,

As a hospital network we are required to keep a full audit trail of who accessed which patient-related document and when. Your current activity log only shows edits, not views, and it's only retained for 90 days. For our compliance we would need: view events included in the log, retention of at least 7 years (or the ability to stream the log to our own storage, e.g. S3 or Azure Blob), and an export in a standard format.

Please let us know whether this is something you are planning to offer, and whether it would be part of the Enterprise plan.

Kind regards,
Dr. Stefan Maier
Information Security Officer""", "other"),
    ("other", """Hi,

I'm a journalist at TechWeekly and I'm working on a piece about how small companies choose customer support tools. I'd love to include your company. Would someone from your team be available for a 20-minute interview next week? I'm particularly interested in how you think about pricing for very small teams, and what you've learned from customers moving over from bigger platforms.

My deadline is Friday the 19th. Happy to send questions in advance.

Best wishes,
Olivia Grant
Senior Reporter, TechWeekly""", "billing"),
    ("other", """Hello, we are evaluating vendors for a new contract and our security team has a list of questions before we can proceed. Where are your servers located, and can we choose EU-only data residency? Do you have ISO 27001 and SOC 2 Type II certifications, and can you share the latest reports under NDA? What is your incident response process and how quickly do you notify customers of a breach? Do you support customer-managed encryption keys? We'd appreciate a contact in your security or compliance team we can talk to directly. Thank you, Procurement team at Halden Insurance""", None),
    ("other", """Hi there!

I just wanted to send a big thank-you to Marcus from your support team. Last Tuesday our whole team was stuck before a big client presentation and he stayed on the chat with us for over an hour, walked us through setting up the templates, and even followed up the next morning to check everything was working. It's rare to get support like that these days.

No action needed, I just wanted his manager to know.

All the best,
Hannah, Studio Lumen""", None),
    ("other", """Hello, I'm a computer science student at TU Delft writing my master's thesis on collaborative editing algorithms. I noticed from your engineering blog that you use CRDTs for real-time collaboration. Would anyone on your engineering team be open to answering a few questions by email, or would you be willing to share which CRDT library or approach you use? I understand if some of it is confidential. I'd of course credit your company in the thesis if you like. Thank you very much, Pieter de Vries""", None),
]
